/* xenpatch's stddef.h (used with -nostdinc instead of the compiler's). */
#ifndef XENPATCH_STDDEF_H
#define XENPATCH_STDDEF_H
typedef unsigned long size_t;
typedef long ptrdiff_t;
#define NULL ((void *)0)
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif
