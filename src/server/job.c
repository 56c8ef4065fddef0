/* job.c — a decode job's lifetime: made with the defaults of an upload, shared by reference, freed by its last holder. */
#include "server/server.h"

#include <stdlib.h>

srv_job *srv_job_new(void)
{
    srv_job *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    pthread_mutex_init(&job->mu, NULL);
    srv_cond_init(&job->changed); /* waiters poll the client every 100 ms */
    job->refs = 1;
    job->temperature = -1.0f;
    job->limits = asr_audio_default_limits();
    job->vad = asr_vad_default_params();
    atomic_init(&job->abort, 0);
    return job;
}

void srv_job_release(srv_job *job)
{
    if (!job) return;
    pthread_mutex_lock(&job->mu);
    int left = --job->refs;
    pthread_mutex_unlock(&job->mu);
    if (left > 0) return;
    free(job->upload);
    free(job->prompt);
    if (job->listener_free) job->listener_free(job->listener);
    asr_result_free(job->result);
    pthread_cond_destroy(&job->changed);
    pthread_mutex_destroy(&job->mu);
    free(job);
}
