/* pool.h — a small fork-join thread pool owned by one asr_state.
 *
 * Each request state has its own workers, so concurrent requests never share
 * a thread pool or any global threading setting (as OpenBLAS's would). A job
 * is a function called once per task index; tasks are handed out in order
 * through an atomic counter and the caller works on them too. Workers spin
 * briefly between jobs, because the decoder issues many short jobs per token,
 * then sleep on a condition variable so an idle state costs no CPU. */
#ifndef ASR_POOL_H
#define ASR_POOL_H

typedef struct asr_pool asr_pool;

/* fn(ctx, task, thread): thread is 0 .. asr_pool_threads()-1, unique among
 * the calls running at the same time (use it to pick per-thread scratch). */
typedef void (*asr_task_fn)(void *ctx, int task, int thread);

/* A pool of n_threads (≥ 1) including the calling thread; NULL when out of
 * memory or when threads cannot be created. */
asr_pool *asr_pool_new(int n_threads);
void asr_pool_free(asr_pool *pool);
int asr_pool_threads(const asr_pool *pool);

/* Run fn for tasks 0 .. n_tasks-1 and return when all have finished. Not
 * reentrant: one job at a time, started from the thread that owns the state. */
void asr_pool_run(asr_pool *pool, asr_task_fn fn, void *ctx, int n_tasks);

#endif
