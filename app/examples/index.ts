/**
 * The Examples menu: short annotated scripts, each a first hour's lesson. They are also tests:
 * tests/app/examples.test.ts runs every one on the engine and checks it ends without error.
 */
export interface Example {
  id: string;
  title: string;
  /** one line for the menu */
  summary: string;
  code: string;
}

const first = `// Your first IOAS: map user memory, attach a device, let it DMA.
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});

// Four pages of user memory, with a message the device will read.
const buf = mmap(4 * 4096);
poke(buf, new TextEncoder().encode("hello from the CPU"));

// Map them at IOVA 0x100000. No device is attached yet, so nothing is pinned:
// iommufd only records the area.
ioctl(iommufd, IOMMU_IOAS_MAP, {
  flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
  ioas_id: ioas, user_va: buf, length: 4 * 4096, iova: 0x100000,
});

// Bind the VFIO device to this iommufd and attach it to the IOAS: the kernel
// makes an automatic HWPT (a VT-d domain), pins the pages and fills the table.
const vfio = open("/dev/vfio/devices/vfio0");
ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
const attach = ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
console.log(\`attached to HWPT \${attach.pt_id}\`);

// The device reads: IOTLB miss, a 4-level walk, an IOTLB fill...
const dev = hw.device(vfio);
console.log(new TextDecoder().decode(await dev.read(0x100000, 18)));
// ...and the second read of the same page hits the IOTLB.
await dev.read(0x100000, 18);

// A device write lands in the user's page.
await dev.write(0x101000, new Uint8Array([0xca, 0xfe]));
console.log("CPU sees", [...peek(buf + 4096, 2)].map((b) => b.toString(16)));
`;

const autoIova = `// Automatic IOVA and the IOVA ranges an IOAS offers.
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});

// A fresh IOAS: one range, the whole 64-bit space, byte alignment.
const r0 = ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, { ioas_id: ioas, num_iovas: 4, allowed_iovas: [] });
console.log("empty IOAS:", r0.allowed_iovas, "alignment", r0.out_iova_alignment);

// Attach a device: the VT-d domain's 48-bit aperture and the MSI window
// [0xfee00000, 0xfeefffff] become reserved; alignment becomes 4 KiB.
const vfio = open("/dev/vfio/devices/vfio1");
ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const r1 = ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, { ioas_id: ioas, num_iovas: 4, allowed_iovas: [] });
console.log("with a VT-d domain:", r1.allowed_iovas, "alignment", r1.out_iova_alignment);

// Without FIXED_IOVA the kernel picks the lowest free IOVA, aligned like the length
// (up to 2 MiB) and keeping the buffer's offset inside its page.
for (const len of [0x1000, 0x10000, 0x400000]) {
  const buf = mmap(len);
  const m = ioctl(iommufd, IOMMU_IOAS_MAP, {
    flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioas, user_va: buf, length: len,
  });
  console.log(\`length 0x\${len.toString(16)} -> iova 0x\${m.iova.toString(16)}\`);
}

// Asking for too little room: ENOSPC once the allowed ranges are used up.
ioctl(iommufd, IOMMU_IOAS_ALLOW_IOVAS, { ioas_id: ioas, allowed_iovas: [{ start: 0x10000000, last: 0x10001fff }] });
try {
  ioctl(iommufd, IOMMU_IOAS_MAP, { flags: IOMMU_IOAS_MAP_READABLE, ioas_id: ioas, user_va: mmap(0x4000), length: 0x4000 });
} catch (e) {
  console.log("no room:", e.code, "-", e.reason);
}
`;

const huge = `// Huge pages: a 2 MiB-aligned buffer backed by a transparent huge page is mapped
// with a single 2 MiB IOPTE; the walk ends at the PD level.
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio0");
ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });

const MiB = 1024 * 1024;
const thp = mmap(4 * MiB, { align: 2 * MiB });
ioctl(iommufd, IOMMU_IOAS_MAP, {
  flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
  ioas_id: ioas, user_va: thp, length: 4 * MiB, iova: 0x40000000,
});
const dev = hw.device(vfio);
await dev.read(0x40000000 + 0x1234, 8);   // walk: PML4 -> PDPT -> PD (PS=1): 3 levels
await dev.read(0x40000000 + 0x1ff000, 8); // same 2 MiB IOTLB entry: a hit

// The same buffer with huge pages turned off for a second IOAS: 4 KiB IOPTEs.
const { out_ioas_id: small } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
ioctl(iommufd, IOMMU_OPTION, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, object_id: small, val64: 0 });
const vfio1 = open("/dev/vfio/devices/vfio1");
ioctl(vfio1, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
ioctl(vfio1, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: small });
ioctl(iommufd, IOMMU_IOAS_MAP, {
  flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, ioas_id: small, user_va: thp, length: 2 * MiB, iova: 0x40000000,
});
await hw.device(vfio1).read(0x40000000 + 0x1234, 8); // 4 levels down to a 4 KiB PTE
`;

const destroy = `// Destroy ordering: an object cannot go while something still holds it (EBUSY).
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio0");
const { out_devid } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });

// A manual HWPT holds the IOAS.
const { out_hwpt_id: hwpt } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { dev_id: out_devid, pt_id: ioas });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: hwpt });

const tryDestroy = (id, what) => {
  try {
    ioctl(iommufd, IOMMU_DESTROY, { id });
    console.log(\`destroyed \${what} \${id}\`);
  } catch (e) {
    console.log(\`\${what} \${id}: \${e.code} - \${e.reason}\`);
  }
};
tryDestroy(ioas, "IOAS");        // EBUSY: the HWPT holds it
tryDestroy(hwpt, "HWPT");        // EBUSY: the device is attached
tryDestroy(out_devid, "device"); // EBUSY: the VFIO driver holds it until close

// Undo in reverse: detach, then the HWPT, then the IOAS.
ioctl(vfio, VFIO_DEVICE_DETACH_IOMMUFD_PT, {});
tryDestroy(hwpt, "HWPT");
tryDestroy(ioas, "IOAS");
tryDestroy(ioas, "IOAS");        // ENOENT: already gone
close(vfio);                     // unbind destroys the device object
close(iommufd);
`;

const sizes = `// The generic size rules every iommufd ioctl obeys (main.c, iommufd_fops_ioctl).
const iommufd = open("/dev/iommu");
const attempt = (what, arg) => {
  try {
    const r = ioctl(iommufd, IOMMU_IOAS_ALLOC, arg);
    console.log(\`\${what}: ok, out_ioas_id=\${r instanceof Uint8Array ? r[8] : r.out_ioas_id}\`);
  } catch (e) {
    console.log(\`\${what}: \${e.code} - \${e.reason}\`);
  }
};
// struct iommu_ioas_alloc is 12 bytes: size, flags, out_ioas_id.
attempt("exact size", { size: 12 });
attempt("shorter than the minimum (EINVAL)", { size: 8 });
// A longer struct from a newer header is fine while the extra bytes are zero...
attempt("longer, zero tail", new Uint8Array([16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
// ...but a field this kernel does not know, set to non-zero, is E2BIG.
attempt("longer, non-zero tail (E2BIG)", new Uint8Array([16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]));
// A known field with an unsupported value: EOPNOTSUPP.
attempt("unknown flag (EOPNOTSUPP)", { flags: 1 });
// An ioctl number the kernel does not know at all: ENOTTY.
try { ioctl(iommufd, 0x3b95, {}); } catch (e) { console.log(\`nr 0x95: \${e.code}\`); }
// The number must be _IO(';', nr) exactly: an _IOWR encoding is ENOTTY too.
try { ioctl(iommufd, 0xc00c3b81, { size: 12 }); } catch (e) { console.log(\`_IOWR encoding: \${e.code}\`); }
// And a NULL argument: EFAULT.
try { ioctl(iommufd, IOMMU_IOAS_ALLOC, null); } catch (e) { console.log(\`NULL: \${e.code}\`); }

// A struct shorter than today's is zero-extended: a v6.6 caller of IOMMU_GET_HW_INFO
// (32 bytes) never sees out_capabilities.
const vfio = open("/dev/vfio/devices/vfio0");
const { out_devid } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
const old = ioctl(iommufd, IOMMU_GET_HW_INFO, { size: 32, dev_id: out_devid, out_capabilities: 0xdead });
console.log("v6.6-sized GET_HW_INFO: out_capabilities untouched =", old.out_capabilities.toString(16));
`;

const dirty = `// Dirty tracking as live migration uses it: enable, let the device write,
// read-and-clear the bitmap, repeat until little is dirty, then read the last round
// with NO_CLEAR before unmapping.
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio0");
const { out_devid } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });

const info = ioctl(iommufd, IOMMU_GET_HW_INFO, { dev_id: out_devid, data_uptr: {} });
if (!(Number(info.out_capabilities) & IOMMU_HW_CAP_DIRTY_TRACKING)) throw new Error("no dirty tracking");

// The HWPT must be allocated for dirty tracking.
const { out_hwpt_id: hwpt } = ioctl(iommufd, IOMMU_HWPT_ALLOC, {
  flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING, dev_id: out_devid, pt_id: ioas,
});
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: hwpt });

const PAGES = 16, PAGE = 4096, IOVA = 0x200000;
const guest = mmap(PAGES * PAGE);
ioctl(iommufd, IOMMU_IOAS_MAP, {
  flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
  ioas_id: ioas, user_va: guest, length: PAGES * PAGE, iova: IOVA,
});
ioctl(iommufd, IOMMU_HWPT_SET_DIRTY_TRACKING, { hwpt_id: hwpt, flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE });

const dev = hw.device(vfio);
const dirtyPages = (flags = 0) => {
  const bitmap = new BigUint64Array(1); // 16 pages fit one word
  ioctl(iommufd, IOMMU_HWPT_GET_DIRTY_BITMAP, {
    hwpt_id: hwpt, flags, iova: IOVA, length: PAGES * PAGE, page_size: PAGE, data: bitmap,
  });
  return [...Array(PAGES).keys()].filter((i) => (bitmap[0] >> BigInt(i)) & 1n);
};

await dev.read(IOVA, 64);                          // reads never set D
await dev.write(IOVA + 3 * PAGE, new Uint8Array(8)); // writes set D in the leaf
await dev.write(IOVA + 9 * PAGE, new Uint8Array(8));
console.log("round 1 dirty pages:", dirtyPages());   // [3, 9], and cleared
await dev.write(IOVA + 9 * PAGE + 8, new Uint8Array(8));
console.log("round 2 dirty pages:", dirtyPages(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)); // [9]
console.log("still dirty (NO_CLEAR):", dirtyPages()); // [9] again
`;

export const EXAMPLES: readonly Example[] = [
  { id: "first-ioas", title: "First IOAS, map and device DMA", summary: "IOAS_ALLOC, IOAS_MAP, bind, attach, a DMA read that walks and one that hits", code: first },
  { id: "auto-iova", title: "Automatic IOVA and IOVA ranges", summary: "what a domain reserves, how the kernel picks an IOVA, ENOSPC", code: autoIova },
  { id: "huge-pages", title: "Huge pages", summary: "a THP-backed buffer mapped with a 2 MiB IOPTE; IOMMU_OPTION_HUGE_PAGES off", code: huge },
  { id: "destroy-ebusy", title: "Destroy ordering and EBUSY", summary: "who holds what, and the order that lets everything go", code: destroy },
  { id: "size-rules", title: "The generic size rules", summary: "EINVAL, E2BIG, EOPNOTSUPP, ENOTTY, EFAULT and zero-extension", code: sizes },
  { id: "dirty-tracking", title: "Dirty tracking for live migration", summary: "HWPT_ALLOC_DIRTY_TRACKING, SET_DIRTY_TRACKING, GET_DIRTY_BITMAP (NO_CLEAR)", code: dirty },
];

export const DEFAULT_EXAMPLE = EXAMPLES[0];
