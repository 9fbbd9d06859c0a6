/* xenpatch's inttypes.h: the fixed-width types and the PRI* format macros. */
#ifndef XENPATCH_INTTYPES_H
#define XENPATCH_INTTYPES_H
#include <stdint.h>
#if __SIZEOF_LONG__ == 8
#define __XENPATCH_PRI64 "l"
#else
#define __XENPATCH_PRI64 "ll"
#endif
#define PRId8 "d"
#define PRId16 "d"
#define PRId32 "d"
#define PRId64 __XENPATCH_PRI64 "d"
#define PRIu8 "u"
#define PRIu16 "u"
#define PRIu32 "u"
#define PRIu64 __XENPATCH_PRI64 "u"
#define PRIx8 "x"
#define PRIx16 "x"
#define PRIx32 "x"
#define PRIx64 __XENPATCH_PRI64 "x"
#define PRIX64 __XENPATCH_PRI64 "X"
#endif
