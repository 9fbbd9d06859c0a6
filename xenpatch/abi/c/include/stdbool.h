/* xenpatch's stdbool.h (used with -nostdinc instead of the compiler's). */
#ifndef XENPATCH_STDBOOL_H
#define XENPATCH_STDBOOL_H
#define bool _Bool
#define true 1
#define false 0
#endif
