/* test_decode_batch.c — the batched encoder and decoder step against one window at a time, on a synthetic model.
 *
 * Three windows of different (random) mels go through asr_encode_batch; each
 * window's cross K/V must equal asr_encode of that window alone. Then the
 * windows are decoded together, in a permuted slot order, for a two-token
 * prompt and then one more token for two of them (the third has "finished"),
 * and every sequence's logits must equal asr_decode of that window alone —
 * the batch shares the weights' reads, never results between windows. The
 * check that the three windows' logits differ keeps the comparison from
 * passing on a model whose output ignores its input.
 */
#include "check.h"
#include "engine.h"
#include "synth_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static float max_rel_diff(const float *a, const float *b, size_t n)
{
    float worst = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]) / (1e-3f + fabsf(b[i]));
        if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

int main(void)
{
    (void)synth_ct2_model, (void)synth_ct2_alias, (void)synth_ct2_finish; /* the header's CTranslate2 writer is unused here */
    synth_hp hp = synth_default_hp();
    hp.d = 16;
    hp.heads = 2;
    hp.dec_layers = 2;
    hp.n_text_ctx = 16;
    synth_buf file = {0};
    synth_ggml_model(&file, &hp);
    char path[] = "/tmp/asr-test-decode-batch-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, file.p, file.n) == (ssize_t)file.n, "write the synthetic model");
    if (fd >= 0) close(fd);
    free(file.p);

    asr_error err;
    asr_model *m = NULL;
    asr_model_params mp = asr_model_default_params();
    mp.n_threads = 2;
    mp.compute_type = ASR_COMPUTE_FLOAT32;
    asr_status s = asr_model_load(path, &mp, &m, &err);
    unlink(path);
    CHECK(s == ASR_OK, "load the synthetic model: %s", err.message);
    if (s != ASR_OK) return CHECK_DONE();
    asr_state *st = asr_state_new(m, &err);
    CHECK(st != NULL, "asr_state_new");
    if (!st) return CHECK_DONE();

    enum { N = 3 };
    const int V = m->hp.n_vocab, A = m->hp.n_audio_ctx, td = m->hp.n_text_state, L = m->hp.n_text_layer;
    const size_t mel_n = (size_t)m->hp.n_mels * ASR_N_FRAMES, kv_n = (size_t)A * 2 * td;
    CHECK(asr_batch_reserve(st, N, &err) == ASR_OK, "asr_batch_reserve(%d)", N);
    CHECK(asr_batch_reserve(st, ASR_MAX_BATCH + 1, &err) == ASR_ERR_INVALID_ARGUMENT,
          "a batch above %d windows is refused", ASR_MAX_BATCH);
    uint64_t rng = 12345;
    for (size_t i = 0; i < N * mel_n; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        st->batch->mel[i] = (float)((rng >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    CHECK(asr_encode_batch(st, N, &err) == ASR_OK, "asr_encode_batch of %d windows", N);

    /* the batch's results, copied before the single-window runs reuse the state */
    const int slot[N] = {2, 0, 1}, prompt[N * 2] = {50257, 11, 50257, 12, 50257, 13};
    const int slot2[2] = {1, 2}, next[2] = {21, 22};
    float *cross = malloc((size_t)L * N * kv_n * sizeof(float));
    float *lg1 = malloc((size_t)N * V * sizeof(float)), *lg2 = malloc((size_t)2 * V * sizeof(float));
    memcpy(cross, st->batch->cross_kv, (size_t)L * N * kv_n * sizeof(float));
    CHECK(asr_decode_batch(st, prompt, slot, N, 2, 0, 1, &err) == ASR_OK, "batched prompt step");
    memcpy(lg1, st->batch->logits, (size_t)N * V * sizeof(float));
    CHECK(asr_decode_batch(st, next, slot2, 2, 1, 2, 0, &err) == ASR_OK, "batched step of 2 of the 3 windows");
    memcpy(lg2, st->batch->logits, (size_t)2 * V * sizeof(float));
    const int bad_slot[1] = {N};
    CHECK(asr_decode_batch(st, next, bad_slot, 1, 1, 2, 0, &err) == ASR_ERR_INTERNAL,
          "a slot outside the encoded windows is refused");

    for (int w = 0; w < N; w++) {
        s = asr_encode(st, st->batch->mel + (size_t)w * mel_n, &err);
        float worst = 0.0f;
        for (int l = 0; l < L; l++) {
            float d = max_rel_diff(cross + ((size_t)l * N + w) * kv_n, (const float *)st->cross_kv + (size_t)l * kv_n, kv_n);
            if (d > worst) worst = d;
        }
        CHECK(s == ASR_OK && worst <= 1e-5f, "window %d: batched cross K/V = alone (max rel diff %g)", w, worst);
        int row = -1, row2 = -1;
        for (int i = 0; i < N; i++) if (slot[i] == w) row = i;
        for (int i = 0; i < 2; i++) if (slot2[i] == w) row2 = i;
        s = asr_decode(st, prompt + 2 * row, 1, 2, 0, 1, &err);
        float d1 = max_rel_diff(lg1 + (size_t)row * V, st->logits, (size_t)V);
        CHECK(s == ASR_OK && d1 <= 1e-5f, "window %d: batched prompt logits = alone (max rel diff %g)", w, d1);
        if (row2 >= 0) {
            s = asr_decode(st, next + row2, 1, 1, 2, 0, &err);
            float d2 = max_rel_diff(lg2 + (size_t)row2 * V, st->logits, (size_t)V);
            CHECK(s == ASR_OK && d2 <= 1e-5f, "window %d: batched next-token logits = alone (max rel diff %g)", w, d2);
        }
    }
    float spread = fmaxf(max_rel_diff(lg1, lg1 + V, (size_t)V), max_rel_diff(lg1 + V, lg1 + 2 * (size_t)V, (size_t)V));
    CHECK(spread > 1e-3f, "the windows' logits differ (max rel diff %g): the test sees the input", spread);

    free(cross);
    free(lg1);
    free(lg2);
    asr_state_free(st);
    asr_model_free(m);
    return CHECK_DONE();
}
