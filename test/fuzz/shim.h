/* test/fuzz/shim.h: the harnesses' side of shim.c */
#ifndef PGMAKER_FUZZ_SHIM_H
#define PGMAKER_FUZZ_SHIM_H

/* Runs fn(arg); false when it raised an ERROR (the input was rejected). */
extern bool ShimRun(void (*fn) (void *), void *arg);
extern void ShimError(void) pg_attribute_noreturn();
/* Frees everything palloc'd since the last call. */
extern void ShimFreeAll(void);

#endif
