/* lea backend: relu.c is the portable ref code (DSPLib has no call that helps here); the ref file is
 * compiled as part of this backend, not copied. */
#include "../ref/relu.c"
