/* cmsis backend: pooling windows are 2-D and tiny (no CMSIS-DSP function computes them without copying),
 * so this is the ref backend's code, compiled here (bit-exact with the spec). */
#include "../ref/pool.c"
