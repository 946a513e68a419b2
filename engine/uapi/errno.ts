/**
 * Linux errno numbers (asm-generic/errno-base.h, errno.h; x86-64/arm64) and the meanings the
 * iommufd uAPI gives them (include/uapi/linux/iommufd.h, "General ioctl format" DOC block).
 *
 * Handlers in engine/kernel return `0 | Err` or `T | Err`, where Err is a negative errno carrying
 * the reason: the kernel function whose check failed and why. That lets kernel code read like the
 * C it mirrors: `if (rc) return rc;`, `if (isErr(x)) return x;`.
 */

/** errno name → number. Every name here is also a script global. */
export const ERRNO = {
  EPERM: 1, // Operation not permitted
  ENOENT: 2, // iommufd: an ID or IOVA given does not exist
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7, // iommufd: the struct has non-zero bytes beyond what this kernel understands
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12, // iommufd: out of memory, or RLIMIT_MEMLOCK exceeded while pinning
  EACCES: 13,
  EFAULT: 14, // a user pointer could not be read or written
  ENOTBLK: 15,
  EBUSY: 16, // the object is still referenced
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22, // iommufd: everything was understood, but a field value is wrong
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25, // iommufd: the ioctl number itself is unknown
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  ETIME: 62,
  EOVERFLOW: 75, // iommufd: arithmetic overflow (address + length wraps, value too large)
  EBADFD: 77,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95, // iommufd: a known field holds a value (flag, type, reserved) this kernel does not support
  EADDRINUSE: 98,
  ETIMEDOUT: 110,
} as const;

export type ErrnoName = keyof typeof ERRNO;

/** Aliases the kernel headers define (`#define EDEADLOCK EDEADLK`, `ENOTSUP` = `EOPNOTSUPP` in libc). */
export const ERRNO_ALIASES = { EDEADLOCK: 35, ENOTSUP: 95, EWOULDBLOCK: 11 } as const;

const NAME_BY_NUMBER = new Map<number, ErrnoName>(
  (Object.entries(ERRNO) as [ErrnoName, number][]).map(([n, v]) => [v, n]),
);

/** strerror(3) text, as strace prints it after the errno name. */
export const STRERROR: Record<ErrnoName, string> = {
  EPERM: "Operation not permitted", ENOENT: "No such file or directory", ESRCH: "No such process",
  EINTR: "Interrupted system call", EIO: "Input/output error", ENXIO: "No such device or address",
  E2BIG: "Argument list too long", ENOEXEC: "Exec format error", EBADF: "Bad file descriptor",
  ECHILD: "No child processes", EAGAIN: "Resource temporarily unavailable",
  ENOMEM: "Cannot allocate memory", EACCES: "Permission denied", EFAULT: "Bad address",
  ENOTBLK: "Block device required", EBUSY: "Device or resource busy", EEXIST: "File exists",
  EXDEV: "Invalid cross-device link", ENODEV: "No such device", ENOTDIR: "Not a directory",
  EISDIR: "Is a directory", EINVAL: "Invalid argument", ENFILE: "Too many open files in system",
  EMFILE: "Too many open files", ENOTTY: "Inappropriate ioctl for device",
  ETXTBSY: "Text file busy", EFBIG: "File too large", ENOSPC: "No space left on device",
  ESPIPE: "Illegal seek", EROFS: "Read-only file system", EMLINK: "Too many links",
  EPIPE: "Broken pipe", EDOM: "Numerical argument out of domain",
  ERANGE: "Numerical result out of range", EDEADLK: "Resource deadlock avoided",
  ENAMETOOLONG: "File name too long", ENOLCK: "No locks available",
  ENOSYS: "Function not implemented", ENOTEMPTY: "Directory not empty",
  ENODATA: "No data available", ETIME: "Timer expired",
  EOVERFLOW: "Value too large for defined data type", EBADFD: "File descriptor in bad state",
  EMSGSIZE: "Message too long", EOPNOTSUPP: "Operation not supported",
  EADDRINUSE: "Address already in use", ETIMEDOUT: "Connection timed out",
};

export function errnoName(n: number): ErrnoName | undefined {
  return NAME_BY_NUMBER.get(n);
}

/**
 * A failed kernel call: the errno, and where and why it failed. `where` names the kernel function
 * whose check failed (e.g. "iopt_check_iova"), so the log can teach.
 */
export class Err {
  constructor(
    readonly name: ErrnoName,
    readonly where: string,
    readonly why: string,
  ) {}
  get errno(): number {
    return ERRNO[this.name];
  }
  /** "iopt_check_iova: iova is not aligned to the IOAS iova_alignment (4096)" */
  get reason(): string {
    return `${this.where}: ${this.why}`;
  }
  toString(): string {
    return `${this.name} (${this.reason})`;
  }
}

/** `return err('ENOENT', 'iommufd_get_object', 'no object with ID 7')` */
export function err(name: ErrnoName, where: string, why: string): Err {
  return new Err(name, where, why);
}

/** The kernel's IS_ERR. */
export function isErr(x: unknown): x is Err {
  return x instanceof Err;
}

/** 0 on success or an Err: what an int-returning kernel function gives back. */
export type Rc = 0 | Err;
