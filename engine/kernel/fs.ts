/**
 * The slice of the VFS the engine needs: open files with reference counts, and a per-process
 * fd table handing out the lowest free number (from 3: 0-2 are stdio). A file is released when
 * its last reference goes — which may be long after close(), when something else holds it (a
 * bound VFIO device holds its iommufd, as in the kernel).
 */
import { err, type Err } from "../uapi/errno.ts";

export abstract class KFile {
  /** references: one per fd pointing at it, plus any kernel holder */
  refs = 0;
  released = false;
  abstract readonly kind: "iommufd" | "vfio-device" | "memfd" | "fault" | "veventq";
  /** for logs: "/dev/iommu", "anon_inode:[iommufd-pgfault]", … */
  abstract readonly path: string;
  get(): this {
    this.refs++;
    return this;
  }
  /** fput(): the last put releases the file. */
  put(): void {
    if (this.refs <= 0) throw new Error(`fput of ${this.path} with no references`);
    if (--this.refs === 0) {
      this.released = true;
      this.release();
    }
  }
  protected abstract release(): void;
}

export class FdTable {
  private readonly files = new Map<number, KFile>();
  private readonly reserved = new Set<number>();
  /** RLIMIT_NOFILE */
  limit = 1024;

  install(file: KFile): number | Err {
    for (let fd = 3; fd < this.limit; fd++) {
      if (!this.files.has(fd) && !this.reserved.has(fd)) {
        this.files.set(fd, file.get());
        return fd;
      }
    }
    return err("EMFILE", "get_unused_fd_flags", "too many open files");
  }

  /** get_unused_fd_flags: take the lowest free fd without installing a file yet. */
  reserve(): number | Err {
    for (let fd = 3; fd < this.limit; fd++) {
      if (!this.files.has(fd) && !this.reserved.has(fd)) {
        this.reserved.add(fd);
        return fd;
      }
    }
    return err("EMFILE", "get_unused_fd_flags", "too many open files");
  }
  unreserve(fd: number): void {
    this.reserved.delete(fd);
  }
  /** fd_install: publish a reserved fd (the table takes a reference). */
  installAt(fd: number, file: KFile): void {
    this.reserved.delete(fd);
    this.files.set(fd, file.get());
  }

  get(fd: number): KFile | undefined {
    return this.files.get(fd);
  }

  /** close(2) */
  close(fd: number): 0 | Err {
    const f = this.files.get(fd);
    if (!f) return err("EBADF", "close_fd", `fd ${fd} is not open`);
    this.files.delete(fd);
    f.put();
    return 0;
  }

  fds(): number[] {
    return [...this.files.keys()].sort((a, b) => a - b);
  }
}
