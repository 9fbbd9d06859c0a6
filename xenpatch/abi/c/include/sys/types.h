/* xenpatch's sys/types.h: the few POSIX types public headers use (io/libxenvchan.h). */
#ifndef XENPATCH_SYS_TYPES_H
#define XENPATCH_SYS_TYPES_H
#include <stddef.h>
#include <stdint.h>
typedef long ssize_t;
typedef long off_t;
#endif
