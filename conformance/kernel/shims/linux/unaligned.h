/* Shim for <linux/unaligned.h> (6.12) / <asm/unaligned.h> (6.1): little-endian host, built on
 * the kernel's own include/linux/unaligned/packed_struct.h. */
#ifndef _SHIM_LINUX_UNALIGNED_H
#define _SHIM_LINUX_UNALIGNED_H
#include <linux/kernel.h>
#include <linux/unaligned/packed_struct.h>

#define get_unaligned_le16(p) le16_to_cpu(__get_unaligned_cpu16(p))
#define get_unaligned_le32(p) le32_to_cpu(__get_unaligned_cpu32(p))
#define get_unaligned_le64(p) le64_to_cpu(__get_unaligned_cpu64(p))
#define get_unaligned_be16(p) be16_to_cpu(__get_unaligned_cpu16(p))
#define get_unaligned_be32(p) be32_to_cpu(__get_unaligned_cpu32(p))
#define get_unaligned_be64(p) be64_to_cpu(__get_unaligned_cpu64(p))
#endif
