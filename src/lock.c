/* lock.c - the engine lock: one mutex for the block list, the sweep's marks
 * and every run of backward or forward kernels (node.h says what it guards).
 *
 * Why a sleeping mutex and not a spinlock: a sweep holds the lock for its
 * whole walk (milliseconds on a large graph), and cffi calls into C without
 * the GIL, so many threads can wait at once; a waiter must sleep, not burn a
 * core. pthread mutexes (futex-based on Linux) and Windows' SRW locks spin
 * briefly and then sleep. Holders never call out of C, so the lock is never
 * held across Python code and cannot be re-entered by a finalizer or a
 * signal handler.
 *
 * fork: the child of a process whose other thread held the lock would start
 * with it held forever, and possibly with a half-finished walk's marks in its
 * nodes. So the lock is taken before fork() (no walk is in progress then) and
 * released on both sides after it (pthread_atfork, registered once). */
#include "node.h"

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

static SRWLOCK engine_lock = SRWLOCK_INIT;

void cg__lock(void)
{
    AcquireSRWLockExclusive(&engine_lock);
}

void cg__unlock(void)
{
    ReleaseSRWLockExclusive(&engine_lock);
}

void cg__lock_init(void)
{
}

#else
#include <pthread.h>

static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t at_fork_once = PTHREAD_ONCE_INIT;

void cg__lock(void)
{
    pthread_mutex_lock(&engine_lock);
}

void cg__unlock(void)
{
    pthread_mutex_unlock(&engine_lock);
}

static void register_at_fork(void)
{
    /* prepare takes it (waiting for any sweep to finish), parent and child
     * release it: the child's one thread is the one that took it. If the
     * registration fails (out of memory), fork safety is lost, not
     * correctness in a process that does not fork. */
    (void)pthread_atfork(cg__lock, cg__unlock, cg__unlock);
}

void cg__lock_init(void)
{
    pthread_once(&at_fork_once, register_at_fork);
}
#endif
