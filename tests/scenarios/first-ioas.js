// The README's CLI example: a first IOAS, a map, a device DMA, and the kernel saying no.
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const buf = mmap(0x4000);
poke(buf, new TextEncoder().encode("hello, device"));
ioctl(iommufd, IOMMU_IOAS_MAP, {
  flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
  ioas_id: ioas, user_va: buf, length: 0x4000, iova: 0x100000,
});
const vfio = open("/dev/vfio/devices/vfio0");
ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const bytes = await hw.device(vfio).read(0x100000, 13);
console.log(new TextDecoder().decode(bytes));
try {
  ioctl(iommufd, IOMMU_DESTROY, { id: ioas });
} catch (e) {
  console.log(`destroy refused: ${e.code}`);
}
