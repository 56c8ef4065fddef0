/* engine.c — times asr's encoder on one 30 s window and its decoder per token, at a compute type and thread count.
 * usage: engine MODEL [COMPUTE_TYPE [THREADS [TOKENS [REPEATS]]]]   (make bench-engine)
 * Prints one JSON line: the shapes, the best encode (ms, including every decoder layer's
 * cross K/V) and the best per-token decode (ms, batch 1, positions 4 .. 4+TOKENS-1, logits
 * included) over REPEATS runs (after one unmeasured run when REPEATS > 1), in wall time and in the
 * process's CPU time (all threads: what a shared machine is charged). bench/engine_shapes.py turns it into GFLOP/s and a share of peak. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine.h"
#include "model.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU time of the whole process (every pool thread, spinning included). */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [COMPUTE_TYPE [THREADS [TOKENS [REPEATS]]]]\n", argv[0]);
        return 2;
    }
    asr_model_params mp = asr_model_default_params();
    if (argc > 2) {
        int t = asr_compute_type_parse(argv[2]);
        if (t < 0) {
            fprintf(stderr, "unknown compute type %s\n", argv[2]);
            return 2;
        }
        mp.compute_type = (asr_compute_type)t;
    }
    mp.n_threads = argc > 3 ? atoi(argv[3]) : 2;
    int n_tokens = argc > 4 ? atoi(argv[4]) : 64, repeats = argc > 5 ? atoi(argv[5]) : 5;
    if (n_tokens < 1 || n_tokens > 200 || repeats < 1) {
        fprintf(stderr, "TOKENS must be 1..200, REPEATS >= 1\n");
        return 2;
    }
    asr_error err;
    asr_model *m;
    if (asr_model_load(argv[1], &mp, &m, &err) != ASR_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], err.message);
        return 3;
    }
    asr_state *st = asr_state_new(m, &err);
    if (!st) {
        fprintf(stderr, "state: %s\n", err.message);
        return 3;
    }
    const asr_hparams *hp = &m->hp;
    /* a smooth, speech-like range of log-mel values; the time does not depend on them */
    size_t n_mel = (size_t)hp->n_mels * ASR_N_FRAMES;
    float *mel = malloc(n_mel * sizeof *mel);
    if (!mel) return 3;
    for (size_t i = 0; i < n_mel; i++) mel[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;

    double enc_best = 1e30, dec_best = 1e30, enc_cpu_best = 1e30, dec_cpu_best = 1e30;
    int prompt[4] = {m->tok.sot, m->tok.sot, m->tok.transcribe, m->tok.no_timestamps};
    prompt[1] = m->multilingual ? m->tok.first_lang : m->tok.transcribe;
    int warm = repeats > 1; /* a first, unmeasured run warms caches and pages up (skipped for one run) */
    for (int r = 1 - warm; r <= repeats; r++) {
        double t0 = now_s(), c0 = cpu_s();
        if (asr_encode(st, mel, &err) != ASR_OK) {
            fprintf(stderr, "encode: %s\n", err.message);
            return 4;
        }
        double t1 = now_s(), c1 = cpu_s();
        if (asr_decode(st, prompt, 1, 4, 0, 3, &err) != ASR_OK) {
            fprintf(stderr, "decode: %s\n", err.message);
            return 4;
        }
        double t2 = now_s(), c2 = cpu_s();
        for (int i = 0; i < n_tokens; i++) {
            int tok = 220 + (i * 37) % 1000; /* ordinary text tokens */
            if (asr_decode(st, &tok, 1, 1, 4 + i, 0, &err) != ASR_OK) {
                fprintf(stderr, "decode: %s\n", err.message);
                return 4;
            }
        }
        double t3 = now_s(), c3 = cpu_s();
        if (r > 0 && t1 - t0 < enc_best) enc_best = t1 - t0;
        if (r > 0 && (t3 - t2) / n_tokens < dec_best) dec_best = (t3 - t2) / n_tokens;
        if (r > 0 && c1 - c0 < enc_cpu_best) enc_cpu_best = c1 - c0;
        if (r > 0 && (c3 - c2) / n_tokens < dec_cpu_best) dec_cpu_best = (c3 - c2) / n_tokens;
    }
    printf("{\"engine\": \"asr\", \"model_type\": \"%s\", \"compute_type\": \"%s\", \"threads\": %d, "
           "\"n_mels\": %d, \"n_audio_ctx\": %d, \"n_audio_state\": %d, \"n_audio_layer\": %d, "
           "\"n_text_state\": %d, \"n_text_layer\": %d, \"n_vocab\": %d, \"tokens\": %d, \"repeats\": %d, "
           "\"encode_ms\": %.3f, \"decode_ms_per_token\": %.4f, \"encode_cpu_ms\": %.3f, "
           "\"decode_cpu_ms_per_token\": %.4f}\n",
           asr_model_type(m), asr_compute_type_name(asr_model_compute_type(m)), mp.n_threads, hp->n_mels,
           hp->n_audio_ctx, hp->n_audio_state, hp->n_audio_layer, hp->n_text_state, hp->n_text_layer, hp->n_vocab,
           n_tokens, repeats, 1e3 * enc_best, 1e3 * dec_best, 1e3 * enc_cpu_best, 1e3 * dec_cpu_best);
    free(mel);
    asr_state_free(st);
    asr_model_free(m);
    return 0;
}
