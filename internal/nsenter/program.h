// program.h: the C init's program runner (program.c).
#ifndef BRIG_PROGRAM_H
#define BRIG_PROGRAM_H

// brig_run_program reads an init program from the bootstrap socket fd and
// runs it: it ends in execve, or sends brig an error and exits.
void brig_run_program(int fd) __attribute__((noreturn));

#endif
