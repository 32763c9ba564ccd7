/* The FLEX runtime (checkpointing/flex.c) compiled as part of the flex app, so `-DAPP=flex` builds alone. */
#include "../../../checkpointing/flex.c"
