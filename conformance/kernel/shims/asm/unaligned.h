/* Shim for <asm/unaligned.h> (the 6.1 spelling). */
#include <linux/unaligned.h>
