/* Shim for <asm/types.h>. */
#include <linux/types.h>
