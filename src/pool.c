/* pool.c — fork-join thread pool, one per asr_state (see pool.h). */
#include "pool.h"

#include "cpu/features.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* About 100 µs of polling before a worker sleeps: long enough to bridge the
 * gaps between the decoder's jobs, short enough not to steal a core from
 * other requests when this state is idle. */
#define SPIN_ROUNDS 4000

struct asr_pool {
    int n_threads;
    pthread_t *threads;
    int n_started;

    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint generation; /* bumped (under mu) when a job is published */
    atomic_int stop;

    /* The current job; written only while no worker is inside one. */
    asr_task_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next_task;
    atomic_int busy_workers; /* workers that have not finished the job yet */
};

typedef struct worker_arg {
    asr_pool *pool;
    int thread;
} worker_arg;

static void work_on_tasks(asr_pool *p, int thread)
{
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks) return;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker_main(void *arg)
{
    worker_arg a = *(worker_arg *)arg;
    free(arg);
    asr_pool *p = a.pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int i = 0; i < SPIN_ROUNDS && gen == seen && !atomic_load(&p->stop); i++) {
            asr_cpu_relax();
            gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (gen == seen) {
            pthread_mutex_lock(&p->mu);
            while ((gen = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = gen;
        work_on_tasks(p, a.thread);
        atomic_fetch_sub_explicit(&p->busy_workers, 1, memory_order_release);
    }
}

asr_pool *asr_pool_new(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    asr_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            asr_pool_free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *a = malloc(sizeof *a);
            if (!a) break;
            *a = (worker_arg){p, i};
            if (pthread_create(&p->threads[i - 1], NULL, worker_main, a) != 0) {
                free(a);
                break;
            }
            p->n_started++;
        }
        if (p->n_started != n_threads - 1) {
            asr_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void asr_pool_free(asr_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p);
}

int asr_pool_threads(const asr_pool *p)
{
    return p ? p->n_threads : 1;
}

void asr_pool_run(asr_pool *p, asr_task_fn fn, void *ctx, int n_tasks)
{
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy_workers, p->n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    work_on_tasks(p, 0);
    /* Poll, then yield: a worker may be waiting for this very core (several
     * requests' pools share the machine). */
    for (int i = 0; atomic_load_explicit(&p->busy_workers, memory_order_acquire) > 0; i++)
        if (i < SPIN_ROUNDS) asr_cpu_relax();
        else sched_yield();
}
