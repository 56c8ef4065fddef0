/* compute_types.c — transcribes one file with every compute type and prints the time and the transcript of each.
 * usage: compute_types MODEL AUDIO [THREADS] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "asr.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL AUDIO [THREADS]\n", argv[0]);
        return 2;
    }
    asr_error err;
    asr_audio audio;
    if (asr_audio_decode_file(argv[2], NULL, &audio, &err) != ASR_OK) {
        fprintf(stderr, "%s: %s\n", argv[2], err.message);
        return 3;
    }
    static const asr_compute_type types[] = {ASR_COMPUTE_AUTO, ASR_COMPUTE_FLOAT32, ASR_COMPUTE_FLOAT16,
                                             ASR_COMPUTE_BFLOAT16, ASR_COMPUTE_INT8, ASR_COMPUTE_INT8_FLOAT32,
                                             ASR_COMPUTE_INT8_BFLOAT16};
    int rc = 0;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        asr_model_params mp = asr_model_default_params();
        mp.compute_type = types[i];
        mp.n_threads = argc > 3 ? atoi(argv[3]) : 0;
        asr_model *m = NULL;
        double t0 = now_s();
        if (asr_model_load(argv[1], &mp, &m, &err) != ASR_OK) {
            fprintf(stderr, "%s: %s\n", asr_compute_type_name(types[i]), err.message);
            rc = 1;
            continue;
        }
        double t1 = now_s();
        asr_state *st = asr_state_new(m, &err);
        asr_transcribe_params tp = asr_transcribe_default_params();
        asr_result *res = NULL;
        double t2 = now_s();
        asr_status s = st ? asr_transcribe(st, audio.samples, audio.n_samples, &tp, &res, &err) : ASR_ERR_NO_MEMORY;
        double t3 = now_s();
        if (s == ASR_OK)
            printf("%-14s (%s) load %.2f s, transcribe %.3f s:%s\n", asr_compute_type_name(types[i]),
                   asr_compute_type_name(asr_model_compute_type(m)), t1 - t0, t3 - t2, asr_result_text(res));
        else {
            fprintf(stderr, "%s: %s\n", asr_compute_type_name(types[i]), err.message);
            rc = 1;
        }
        asr_result_free(res);
        asr_state_free(st);
        asr_model_free(m);
    }
    asr_audio_free(&audio);
    return rc;
}
