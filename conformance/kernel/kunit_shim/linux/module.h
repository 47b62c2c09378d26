/* A userspace stand-in for <linux/module.h>, for the KUnit shim (see kunit/test.h here): the
 * module metadata macros the emitted suite ends with become declarations that compile to
 * nothing. Nothing else of module.h is provided. */
#ifndef _KUNIT_SHIM_LINUX_MODULE_H
#define _KUNIT_SHIM_LINUX_MODULE_H

#define MODULE_DESCRIPTION(text) extern int kunit_shim_module_description
#define MODULE_LICENSE(text) extern int kunit_shim_module_license

#endif
