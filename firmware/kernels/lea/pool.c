/* lea backend: pool.c is the portable ref code (DSPLib has no call that helps here); the ref file is
 * compiled as part of this backend, not copied. */
#include "../ref/pool.c"
