// program.h: the C init (program.c runs a program of ops; create.c holds
// the ops of a new container's set-up).
#ifndef BRIG_PROGRAM_H
#define BRIG_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

// brig_run_program reads an init program from the bootstrap socket fd and
// runs it: it ends in execve, or reports an error and exits.
void brig_run_program(int fd) __attribute__((noreturn));

// brig_fail reports an error (to brig before ready, to stderr after) and
// exits 1; err, if not 0, is appended as ": <strerror>".
void brig_fail(int err, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

// The reader of one op's arguments.
struct brig_args {
	const unsigned char *p, *end;
	int op;
};

uint32_t brig_u32(struct brig_args *a);
uint64_t brig_u64(struct brig_args *a);
char *brig_bytes(struct brig_args *a, size_t *len);
char *brig_str(struct brig_args *a);
const void *brig_view(struct brig_args *a, size_t *len);
char **brig_strs(struct brig_args *a);

// OpMount's flags (initprog.MountDirOnly, MountSysfsInUser).
#define BRIG_MOUNT_DIR_ONLY 1
#define BRIG_MOUNT_SYSFS_IN_USER 2

int brig_open_in_root(int root, const char *path);
int brig_mkdir_all(int root, const char *path);
void brig_op_parent_private(struct brig_args *a);
void brig_op_bind_root(struct brig_args *a);
void brig_op_mount(struct brig_args *a);
void brig_op_bind(struct brig_args *a);
void brig_op_cgroup_tmpfs(struct brig_args *a);
void brig_op_cgroup_mount(struct brig_args *a);
void brig_op_cgroup_readonly(struct brig_args *a);
void brig_op_device(struct brig_args *a);
void brig_op_make_cwd(struct brig_args *a);
void brig_op_dev_symlinks(void);
void brig_op_open_state(struct brig_args *a);
void brig_op_pivot_root(struct brig_args *a);
void brig_op_sysctl(struct brig_args *a);
void brig_op_readonly_path(struct brig_args *a);
void brig_op_mask_paths(struct brig_args *a);
void brig_op_readonly_root(void);
void brig_op_loopback_up(void);
void brig_op_wait_start(struct brig_args *a);
void brig_op_apparmor_exec(struct brig_args *a);

#endif
