/* Shim for <linux/types.h>: fixed-width kernel types and attributes, x86_64 userspace (LP64),
 * or i386 userspace (ILP32, gcc -m32) for the BITS_PER_LONG == 32 build. */
#ifndef _SHIM_LINUX_TYPES_H
#define _SHIM_LINUX_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the kernel-C harness shims assume a little-endian host"
#endif

/* BITS_PER_LONG follows the compiler's own long, as the kernel's asm-generic/bitsperlong.h
 * does (CONFIG_64BIT <=> LP64): 64 for x86_64, 32 for gcc -m32 (i386). The kernel types
 * that depend on it (hsiphash_key_t is `unsigned long key[2]`) are then laid out as on such
 * a kernel. */
#if defined(__LP64__) && __SIZEOF_LONG__ == 8 && __SIZEOF_POINTER__ == 8
#define BITS_PER_LONG 64
#elif !defined(__LP64__) && __SIZEOF_LONG__ == 4 && __SIZEOF_POINTER__ == 4
#define BITS_PER_LONG 32
#else
#error "the kernel-C harness shims assume an LP64 (x86_64) or ILP32 (i386, gcc -m32) host"
#endif

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;

typedef u8 __u8;
typedef u16 __u16;
typedef u32 __u32;
typedef u64 __u64;
typedef s8 __s8;
typedef s16 __s16;
typedef s32 __s32;
typedef s64 __s64;

/* u_int8_t, u_int16_t, u_int32_t come from the C library (BSD names, same widths). */

typedef u16 __le16;
typedef u32 __le32;
typedef u64 __le64;
typedef u16 __be16;
typedef u32 __be32;
typedef u64 __be64;
typedef u32 __wsum;

#define __bitwise
#define __force
#define __packed __attribute__((__packed__))
#define __aligned(x) __attribute__((__aligned__(x)))
#undef __always_inline /* glibc's sys/cdefs.h has its own */
#define __always_inline inline __attribute__((__always_inline__))
#define fallthrough __attribute__((__fallthrough__))
#define __read_mostly
#define __init
#define __exit

#endif
