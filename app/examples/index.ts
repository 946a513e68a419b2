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

// The device reads. vfio0 has ATS: it asks the IOMMU for a translation (an IOTLB miss, a
// 4-level walk, an IOTLB fill) and keeps the answer in its own device-TLB...
const dev = hw.device(vfio);
console.log(new TextDecoder().decode(await dev.read(0x100000, 18)));
// ...so the second read of the same page is a device-TLB hit: the IOMMU is not asked again.
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
await dev.read(0x40000000 + 0x1ff000, 8); // same 2 MiB translation: a hit (in vfio0's device-TLB, thanks to ATS)

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

const nested = `// Nested translation: a guest's own page table (stage 1) over the host's (stage 2).
// The VMM allocates a nest-parent HWPT that maps guest RAM (IOVA = guest-physical address),
// the guest builds an x86 first-stage table in that RAM, and a nested HWPT points the
// device at it. A DMA then walks both: up to 24 memory reads for 4 x 4 levels (the
// paging-structure caches skip some), each shown as an s1 or s2 step.
// (vfio1 has no ATS, so every DMA asks the IOMMU; vfio0 would keep translations in its own
// device-TLB and skip the IOMMU on a repeat.)
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio1");
const { out_devid: dev_id } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });

// Stage 2: a NEST_PARENT HWPT on the IOAS. guest() maps 16 MiB of guest RAM into the IOAS
// at GPA 0 (as a VMM maps a VM's memory) and allocates the guest's root table in it.
const { out_hwpt_id: parent } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id, pt_id: ioas });
const g = guest({ iommufd, ioas, size: 16 << 20 });

// The guest driver maps a two-page DMA buffer at IOVA 0x4000_0000 -> GPA 0x10_0000.
g.map(0x40000000, 0x100000, 0x2000);
g.write(0x100000, new TextEncoder().encode("guest buffer, page 0"));
console.log("guest PTEs:", g.pte(0x40000000).map((l) => \`L\${l.level} \${l.bits}\`).join(", "));

// Stage 1: a nested HWPT with the guest's table (IOMMU_HWPT_DATA_VTD_S1), and attach.
// The PASID entry becomes nested: PGTT 011, FSPTPTR = g.root (a GPA), SSPTPTR = the parent's table.
const { out_hwpt_id: nested } = ioctl(iommufd, IOMMU_HWPT_ALLOC, {
  dev_id, pt_id: parent, data_type: IOMMU_HWPT_DATA_VTD_S1, data_uptr: g.s1(),
});
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: nested });

// The device DMAs with the guest's IOVA. Cold: every guest table is first translated
// through stage 2 (the Walk view shows s2 steps, then the s1 entry, level by level).
const dev = hw.device(vfio);
let t0 = hw.now;
console.log(new TextDecoder().decode(await dev.read(0x40000000, 20)));
console.log(\`cold 2D walk: \${hw.now - t0} ns (90 ns per memory read)\`);
await dev.write(0x40001000, new TextEncoder().encode("written by the device"));
console.log("guest sees:", new TextDecoder().decode(g.read(0x101000, 21)));
// Again: an IOTLB hit, tagged with the nested domain's DID and PASID 0.
t0 = hw.now;
await dev.read(0x40000000, 20);
console.log(\`IOTLB hit: \${hw.now - t0} ns\`);

// A write to a read-only guest mapping faults in stage 1 (0x85); an unmapped IOVA faults 0x71.
g.map(0x40002000, 0x102000, 0x1000, { write: false });
for (const [iova, write] of [[0x40002000, true], [0x40005000, false]]) {
  try {
    write ? await dev.write(iova, new Uint8Array(4)) : await dev.read(iova, 4);
  } catch (e) {
    console.log(\`DMA \${write ? "write" : "read"} 0x\${iova.toString(16)}: fault 0x\${e.reason.toString(16)} \${e.reasonName}\`);
  }
}
`;

const forgotten = `// The forgotten invalidation: the guest changes a mapping in its page table but does
// not tell the IOMMU. The device keeps reaching the OLD page through the cached
// translation, and the stale-translation detector says so (event vtd.stale.hit).
// (vfio1 has no ATS: the stale entry is the IOMMU's own IOTLB entry.)
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio1");
const { out_devid: dev_id } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
const { out_hwpt_id: parent } = ioctl(iommufd, IOMMU_HWPT_ALLOC, { flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id, pt_id: ioas });
const g = guest({ iommufd, ioas, size: 16 << 20 });
const IOVA = 0x40000000, OLD = 0x100000, NEW = 0x200000;
g.map(IOVA, OLD, 0x1000);
g.write(OLD, new TextEncoder().encode("old page"));
g.write(NEW, new TextEncoder().encode("new page"));
const { out_hwpt_id: nested } = ioctl(iommufd, IOMMU_HWPT_ALLOC, {
  dev_id, pt_id: parent, data_type: IOMMU_HWPT_DATA_VTD_S1, data_uptr: g.s1(),
});
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: nested });
const dev = hw.device(vfio);
const show = async (when) => console.log(\`\${when}: \${new TextDecoder().decode(await dev.read(IOVA, 8))}\`);

await show("before"); // walks, fills the IOTLB

// The guest moves the mapping to NEW... and forgets IOMMU_HWPT_INVALIDATE.
g.unmap(IOVA, 0x1000).map(IOVA, NEW, 0x1000);
await show("forgot to invalidate"); // still the old page: the IOTLB entry is stale

// What a guest driver must do after changing a present entry: invalidate the range.
// (The VMM turns the guest's invalidation descriptor into this ioctl.)
const r = g.invalidate(nested, IOVA, 0x1000);
console.log("entries handled:", r.entry_num);
await show("after invalidation"); // a fresh 2D walk finds NEW

// A bad entry stops the array: entry_num says how many were handled before it.
const inv = {
  hwpt_id: nested, data_type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  data_uptr: [{ addr: IOVA, npages: 1 }, { addr: IOVA + 0x800, npages: 1 }, { addr: 0, npages: 1 }],
};
try {
  ioctl(iommufd, IOMMU_HWPT_INVALIDATE, inv);
} catch (e) {
  console.log(\`bad entry: \${e.code}, entry_num = \${inv.entry_num} - \${e.reason}\`);
}
`;

const faults = `// A user-space fault handler that maps pages on demand.
// vfio0 has ATS and PRI. When its own TLB (the device-TLB) has no translation it asks the IOMMU
// (an ATS translation request); "no access" comes back with no fault recorded, and the device
// sends a page request (PRI) instead of failing. The request lands in the VT-d page request
// queue, goes through the kernel's I/O page fault path and appears on the fault queue's fd.
// The handler reads it, maps the page and answers SUCCESS; the device asks again and completes.
const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const vfio = open("/dev/vfio/devices/vfio0");
const { out_devid: dev_id } = ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });

// A fault queue, and a HWPT whose I/O page faults go to it.
const { out_fault_id: fault_id, out_fault_fd: faultfd } = ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, {});
const { out_hwpt_id: hwpt } = ioctl(iommufd, IOMMU_HWPT_ALLOC, {
  flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id, pt_id: ioas, fault_id,
});
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: hwpt });

// The memory the device will use: nothing is mapped in the IOAS yet.
const IOVA = 0x40000000, SIZE = 4 * 4096;
const ram = mmap(SIZE);
poke(ram, new TextEncoder().encode("page 0"));
poke(ram + 2 * 4096, new TextEncoder().encode("page 2"));
const RW = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

// The handler: wait until the fd is readable, read whole groups, answer each cookie.
async function serve() {
  await poll(faultfd);
  for (const f of read(faultfd)) {
    const page = f.addr - (f.addr % 4096);
    const inside = page >= IOVA && page < IOVA + SIZE;
    console.log(\`fault: \${f.perm & IOMMU_PGFAULT_PERM_WRITE ? "write" : "read"} 0x\${f.addr.toString(16)}, group \${f.grpid}, cookie \${f.cookie}\`);
    if (inside) ioctl(iommufd, IOMMU_IOAS_MAP, { flags: RW, ioas_id: ioas, user_va: ram + (page - IOVA), length: 4096, iova: page });
    write(faultfd, [{ cookie: f.cookie, code: inside ? IOMMUFD_PAGE_RESP_SUCCESS : IOMMUFD_PAGE_RESP_INVALID }]);
  }
}

// Two DMAs at once: each stalls on its page request while the handler runs.
const dev = hw.device(vfio);
const dec = (b) => new TextDecoder().decode(b);
let t0 = hw.now;
const handled = serve();
const [a, b] = await Promise.all([dev.read(IOVA, 6), dev.read(IOVA + 2 * 4096, 6)]);
await handled;
console.log(\`device read "\${dec(a)}" and "\${dec(b)}" after \${hw.now - t0} ns\`);

// Mapped now, and cached in the device's own TLB: the IOMMU is not even asked.
t0 = hw.now;
await dev.read(IOVA, 6);
console.log(\`again: \${hw.now - t0} ns (a device-TLB hit)\`);

// Outside the buffer the handler answers INVALID, and the DMA fails.
const outside = dev.write(0x80000000, new Uint8Array(4));
await serve();
try {
  await outside;
} catch (e) {
  console.log(\`DMA to 0x80000000 failed: response code \${e.responseCode} (\${e.reasonName})\`);
}
`;

export const EXAMPLES: readonly Example[] = [
  { id: "first-ioas", title: "First IOAS, map and device DMA", summary: "IOAS_ALLOC, IOAS_MAP, bind, attach, a DMA read that walks and one that hits", code: first },
  { id: "auto-iova", title: "Automatic IOVA and IOVA ranges", summary: "what a domain reserves, how the kernel picks an IOVA, ENOSPC", code: autoIova },
  { id: "huge-pages", title: "Huge pages", summary: "a THP-backed buffer mapped with a 2 MiB IOPTE; IOMMU_OPTION_HUGE_PAGES off", code: huge },
  { id: "destroy-ebusy", title: "Destroy ordering and EBUSY", summary: "who holds what, and the order that lets everything go", code: destroy },
  { id: "size-rules", title: "The generic size rules", summary: "EINVAL, E2BIG, EOPNOTSUPP, ENOTTY, EFAULT and zero-extension", code: sizes },
  { id: "dirty-tracking", title: "Dirty tracking for live migration", summary: "HWPT_ALLOC_DIRTY_TRACKING, SET_DIRTY_TRACKING, GET_DIRTY_BITMAP (NO_CLEAR)", code: dirty },
  { id: "nested", title: "Guest mapping a buffer for a device (nested)", summary: "NEST_PARENT, a guest's first-stage table, IOMMU_HWPT_DATA_VTD_S1, the 24-read 2D walk", code: nested },
  { id: "page-faults", title: "A user-space fault handler that maps pages on demand", summary: "IOMMU_FAULT_QUEUE_ALLOC, FAULT_ID_VALID, ATS + PRI, poll/read/write on the fault fd", code: faults },
  { id: "forgotten-invalidation", title: "The forgotten invalidation", summary: "a guest edits its table, skips HWPT_INVALIDATE, the device reaches the old page", code: forgotten },
];

export const DEFAULT_EXAMPLE = EXAMPLES[0];
