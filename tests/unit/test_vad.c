/* test_vad.c — Silero VAD: frame maths against double-precision loops, the weight parser on hostile
 * bytes, frame bookkeeping, and faster-whisper's chunking and time mapping on worked examples. */
#include "asr.h"
#include "check.h"
#include "vad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 12345;
static float urand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

static void fill(float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) v[i] = urand() * scale;
}

static void test_reflect_pad(void)
{
    const float x[4] = {1, 2, 3, 4};
    float out[8];
    asr_vad_reflect_pad(x, 4, 2, out);
    const float want[8] = {3, 2, 1, 2, 3, 4, 3, 2};
    CHECK(memcmp(out, want, sizeof want) == 0, "reflect pad without repeating the edge (ONNX/numpy 'reflect')");
}

/* conv3_relu against a double loop, for each layer shape of the network */
static void test_conv(void)
{
    const int shapes[4][4] = {{129, 128, 4, 1}, {128, 64, 4, 2}, {64, 64, 2, 2}, {64, 128, 1, 1}};
    for (int s = 0; s < 4; s++) {
        int c_in = shapes[s][0], c_out = shapes[s][1], l_in = shapes[s][2], stride = shapes[s][3];
        int l_out = (l_in - 1) / stride + 1;
        float *in = malloc(sizeof(float) * c_in * l_in), *w = malloc(sizeof(float) * c_out * c_in * 3);
        float *b = malloc(sizeof(float) * c_out), *out = malloc(sizeof(float) * c_out * l_out);
        fill(in, (size_t)c_in * l_in, 1.0f);
        fill(w, (size_t)c_out * c_in * 3, 0.2f);
        fill(b, (size_t)c_out, 0.5f);
        int got_l = asr_vad_conv3_relu(in, c_in, l_in, w, b, c_out, stride, out);
        double max_err = 0;
        int n_zero = 0;
        for (int o = 0; o < c_out; o++)
            for (int t = 0; t < l_out; t++) {
                double acc = b[o];
                for (int i = 0; i < c_in; i++)
                    for (int k = 0; k < 3; k++) {
                        int src = t * stride + k - 1;
                        if (src >= 0 && src < l_in) acc += (double)w[(o * c_in + i) * 3 + k] * in[i * l_in + src];
                    }
                if (acc < 0) acc = 0, n_zero++;
                double e = fabs(acc - out[o * l_out + t]);
                if (e > max_err) max_err = e;
            }
        CHECK(got_l == l_out && max_err < 1e-5 && n_zero > 0,
              "conv %d→%d (length %d, stride %d) = double loop with ReLU (max err %.2g, %d clipped)", c_in, c_out, l_in,
              stride, max_err, n_zero);
        free(in), free(w), free(b), free(out);
    }
}

static double dsig(double x) { return 1.0 / (1.0 + exp(-x)); }

static void test_lstm(void)
{
    enum { N = 128, H = 128 };
    float *w = malloc(sizeof(float) * 4 * H * N), *r = malloc(sizeof(float) * 4 * H * H), b[8 * H];
    float x[N], h[H], c[H], gates[4 * H];
    double hd[H], cd[H];
    fill(w, 4 * H * N, 0.1f), fill(r, 4 * H * H, 0.1f), fill(b, 8 * H, 0.3f);
    fill(h, H, 0.5f), fill(c, H, 1.0f);
    for (int j = 0; j < H; j++) hd[j] = h[j], cd[j] = c[j];
    double max_err = 0;
    for (int step = 0; step < 3; step++) {
        fill(x, N, 1.0f);
        double g[4 * H];
        for (int k = 0; k < 4 * H; k++) {
            double acc = (double)b[k] + b[4 * H + k];
            for (int j = 0; j < N; j++) acc += (double)w[k * N + j] * x[j];
            for (int j = 0; j < H; j++) acc += (double)r[k * H + j] * hd[j];
            g[k] = acc;
        }
        for (int j = 0; j < H; j++) { /* ONNX gate order: i, o, f, c */
            cd[j] = dsig(g[2 * H + j]) * cd[j] + dsig(g[j]) * tanh(g[3 * H + j]);
            hd[j] = dsig(g[H + j]) * tanh(cd[j]);
        }
        asr_vad_lstm_step(x, N, w, r, b, H, h, c, gates);
        for (int j = 0; j < H; j++) {
            if (fabs(h[j] - hd[j]) > max_err) max_err = fabs(h[j] - hd[j]);
            if (fabs(c[j] - cd[j]) > max_err) max_err = fabs(c[j] - cd[j]);
        }
    }
    CHECK(max_err < 1e-5, "LSTM steps (gates i,o,f,c) = double loop over 3 steps (max err %.2g)", max_err);
    free(w), free(r);
}

static void test_parser(void)
{
    asr_error err;
    asr_vad_model *m = NULL;
    CHECK(asr_vad_model_load(NULL, &m, &err) == ASR_OK && m, "built-in weights load (%s)", err.message);
    const unsigned char *good = asr_vad_builtin_data;
    size_t size = (size_t)(asr_vad_builtin_end - asr_vad_builtin_data);
    CHECK(size > 1000000 && size < 2000000, "built-in weight file is %zu bytes", size);
    asr_vad_model *m2 = NULL;
    CHECK(asr_vad_model_load_memory(good, size, &m2, &err) == ASR_OK, "the same bytes load from memory");
    asr_vad_model_free(m2);

    /* every truncation in the first 4 KiB (all the headers of the first
     * tensor and into its data) and some further in fails cleanly */
    int all_refused = 1;
    for (size_t n = 0; n < 4096; n++) {
        m2 = (asr_vad_model *)1;
        if (asr_vad_model_load_memory(good, n, &m2, &err) != ASR_ERR_MODEL || m2) all_refused = 0;
    }
    for (size_t n = 4096; n < size; n += 4099) {
        m2 = (asr_vad_model *)1;
        if (asr_vad_model_load_memory(good, n, &m2, &err) != ASR_ERR_MODEL || m2) all_refused = 0;
    }
    CHECK(all_refused, "every truncated weight file is refused with ASR_ERR_MODEL and *out = NULL");

    unsigned char *bad = malloc(size + 8);
    struct { size_t at; uint32_t value; const char *what; } edits[] = {
        {8, 2, "version 2"}, {12, 13, "13 tensors"}, {16, 0, "empty name"}, {16, 0x7fffffff, "huge name"},
        {32, 4, "wrong rank"}, {36, 259, "wrong dimension"}, {36, 0xffffffff, "huge dimension"},
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        memcpy(bad, good, size);
        uint32_t v = edits[e].value;
        unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
        memcpy(bad + edits[e].at, le, 4);
        m2 = NULL;
        asr_status s = asr_vad_model_load_memory(bad, size, &m2, &err);
        CHECK(s == ASR_ERR_MODEL && !m2, "weight file with %s refused: %s", edits[e].what, err.message);
    }
    memcpy(bad, good, size);
    memcpy(bad + 20, "stft.basiX", 10);
    CHECK(asr_vad_model_load_memory(bad, size, &m2, &err) == ASR_ERR_MODEL, "unknown tensor name refused: %s", err.message);
    memcpy(bad, good, size);
    const float nan = NAN;
    memcpy(bad + size - 4, &nan, 4);
    CHECK(asr_vad_model_load_memory(bad, size, &m2, &err) == ASR_ERR_MODEL, "NaN weight refused: %s", err.message);
    CHECK(asr_vad_model_load("/nonexistent/vad.bin", &m2, &err) == ASR_ERR_IO, "missing file: %s", err.message);
    free(bad);
    asr_vad_model_free(m);
}

static void test_probs(void)
{
    asr_error err;
    asr_vad_model *m = NULL;
    if (asr_vad_model_load(NULL, &m, &err) != ASR_OK) return;
    const size_t lens[] = {0, 1, 511, 512, 513, 1000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        float buf[1000] = {0}, *p = NULL;
        size_t n = 0;
        asr_status s = asr_vad_probs(m, buf, lens[i], &p, &n, &err);
        CHECK(s == ASR_OK && n == lens[i] / 512 + 1, "%zu samples → %zu frames (faster-whisper pads by 1..512)", lens[i], n);
        free(p);
    }
    /* 3 s: silence, then a loud 300 Hz buzz with harmonics, then silence */
    enum { N = 3 * 16000 };
    float *a = calloc(N, sizeof(float));
    for (int i = 16000; i < 32000; i++) a[i] = 0.3f * sinf(2 * (float)M_PI * 300 * i / 16000.0f) + 0.05f * urand();
    float *p = NULL, *q = NULL;
    size_t n = 0, nq = 0;
    CHECK(asr_vad_probs(m, a, N, &p, &n, &err) == ASR_OK && n == N / 512 + 1, "probs of 3 s");
    int in_range = 1, silent_low = 1;
    for (size_t f = 0; f < n; f++) {
        if (!(p[f] > 0.0f && p[f] < 1.0f)) in_range = 0;
        if (f < 20 && p[f] > 0.2f) silent_low = 0; /* the first 0.64 s: digital silence */
    }
    CHECK(in_range && silent_low, "probabilities in (0, 1), low over digital silence (first %.3f)", p[0]);
    /* frame f depends only on what came before it: a prefix gives the same first probabilities */
    size_t cut = 40 * 512;
    CHECK(asr_vad_probs(m, a, cut, &q, &nq, &err) == ASR_OK && nq == 41 && memcmp(p, q, 40 * sizeof(float)) == 0,
          "the probabilities of a prefix equal the first ones of the whole (state carried, nothing leaks back)");
    free(q);
    CHECK(asr_vad_probs(m, a, N, &q, &nq, &err) == ASR_OK && nq == n && memcmp(p, q, n * sizeof(float)) == 0,
          "a second run gives the same probabilities (no state kept in the model)");
    /* the live stream, one frame per call, gives the whole buffer's probabilities */
    asr_vad_stream *vs = NULL;
    CHECK(asr_vad_stream_new(m, &vs, &err) == ASR_OK, "a VAD stream");
    int same = 1;
    for (size_t f = 0; f + 1 < n; f++) same &= asr_vad_stream_push(vs, a + f * 512) == p[f];
    asr_vad_stream_reset(vs);
    same &= asr_vad_stream_push(vs, a) == p[0];
    CHECK(same, "the VAD stream's frame probabilities equal asr_vad_probs' (and reset starts over)");
    asr_vad_stream_free(vs);
    free(p), free(q), free(a);
    CHECK(asr_vad_probs(m, NULL, 5, &p, &n, &err) == ASR_ERR_INVALID_ARGUMENT, "NULL samples refused");
    asr_vad_model_free(m);
}

static int segs_equal(const asr_vad_segment *got, size_t n_got, const size_t (*want)[2], size_t n_want)
{
    if (n_got != n_want) return 0;
    for (size_t i = 0; i < n_got; i++)
        if (got[i].start != want[i][0] || got[i].end != want[i][1]) return 0;
    return 1;
}

static void run_case(const char *what, const float *probs, size_t n_probs, const asr_vad_params *vp,
                     const size_t (*want)[2], size_t n_want)
{
    asr_error err;
    asr_vad_segment *segs = NULL;
    size_t n = 0;
    asr_status s = asr_vad_segments_from_probs(probs, n_probs, n_probs * 512, vp, &segs, &n, &err);
    CHECK(s == ASR_OK && segs_equal(segs, n, want, n_want), "%s: %zu chunks%s", what, n,
          n ? "" : " (none)");
    for (size_t i = 0; i < n; i++) printf("     [%zu, %zu)\n", segs[i].start, segs[i].end);
    free(segs);
}

/* Worked by hand through faster-whisper's get_speech_timestamps() */
static void test_segments(void)
{
    enum { F = 100 };
    float p[F];
    asr_vad_params d = asr_vad_default_params();

    for (int i = 0; i < F; i++) p[i] = 0.0f;
    run_case("all silence", p, F, &d, NULL, 0);

    /* speech in frames 10..19; with 2 s of minimum silence it ends at frame
     * 20 (sample 10240) once 62.5 frames have passed; padded by 6400 samples */
    for (int i = 10; i < 20; i++) p[i] = 0.9f;
    run_case("one burst, defaults", p, F, &d, (const size_t[][2]){{0, 16640}}, 1);

    /* max speech 1 s, no padding: 15488 samples at most (16000 - 512), split hard */
    asr_vad_params mx = d;
    mx.max_speech_duration_s = 1.0;
    mx.speech_pad_ms = 0;
    for (int i = 0; i < F; i++) p[i] = 0.9f;
    run_case("continuous speech, max 1 s", p, F, &mx,
             (const size_t[][2]){{0, 15872}, {16384, 32256}, {32768, 48640}, {49152, 51200}}, 4);

    /* two bursts 5120 samples apart with 100 ms minimum silence: the gap is
     * under two paddings, so each side takes half of it */
    asr_vad_params sh = d;
    sh.min_silence_duration_ms = 100;
    for (int i = 0; i < 60; i++) p[i] = (i < 10 || (i >= 20 && i < 30)) ? 0.9f : 0.0f;
    run_case("two bursts, 100 ms silences", p, 60, &sh, (const size_t[][2]){{0, 7680}, {7680, 21760}}, 2);

    /* values between neg_threshold (0.35) and threshold neither start nor end speech */
    for (int i = 0; i < 60; i++) p[i] = 0.4f;
    run_case("0.4 everywhere: no speech starts", p, 60, &sh, NULL, 0);
    for (int i = 0; i < 60; i++) p[i] = i < 5 ? 0.9f : i < 30 ? 0.4f : 0.0f;
    run_case("0.9 then 0.4 keeps speech going to frame 30", p, 60, &sh, (const size_t[][2]){{0, 21760}}, 1);

    /* minimum speech 1 s drops a 5-frame burst */
    asr_vad_params ms = sh;
    ms.min_speech_duration_ms = 1000;
    for (int i = 0; i < 60; i++) p[i] = i < 5 ? 0.9f : 0.0f;
    run_case("short burst under min speech", p, 60, &ms, NULL, 0);

    asr_error err;
    asr_vad_segment *segs = NULL;
    size_t n = 0;
    asr_vad_params bad = d;
    bad.threshold = 1.5;
    CHECK(asr_vad_segments_from_probs(p, 60, 60 * 512, &bad, &segs, &n, &err) == ASR_ERR_INVALID_ARGUMENT,
          "threshold 1.5 refused: %s", err.message);
    bad = d;
    bad.speech_pad_ms = -1;
    CHECK(asr_vad_segments_from_probs(p, 60, 60 * 512, &bad, &segs, &n, &err) == ASR_ERR_INVALID_ARGUMENT,
          "negative padding refused");
}

static void test_time_map(void)
{
    /* speech at 1-2 s and 3-4 s of the input: 1 s and 2 s of silence before them */
    const asr_vad_segment c[2] = {{16000, 32000}, {48000, 64000}};
    CHECK(asr_vad_original_time(c, 2, 0.5, -1, 0) == 1.5, "0.5 s → 1.5 s");
    CHECK(asr_vad_original_time(c, 2, 1.0, -1, 1) == 2.0, "1.0 s as an end → end of the first chunk, 2.0 s");
    CHECK(asr_vad_original_time(c, 2, 1.0, -1, 0) == 3.0, "1.0 s as a start → start of the second chunk, 3.0 s");
    CHECK(asr_vad_original_time(c, 2, 1.5, -1, 0) == 3.5, "1.5 s → 3.5 s");
    CHECK(asr_vad_original_time(c, 2, 5.0, -1, 0) == 7.0, "past the end → the last chunk, 7.0 s");
    CHECK(asr_vad_original_time(c, 2, 0.123456, -1, 0) == 1.12, "rounded to 10 ms like round(x, 2)");
    CHECK(asr_vad_original_time(c, 2, 1.5, 0, 0) == 2.5, "a given chunk index is used as is");
    CHECK(asr_vad_original_time(c, 2, 0.125, -1, 0) == 1.12, "0.125 + 1 = 1.125 rounds half to even → 1.12");
    CHECK(asr_vad_chunk_index(c, 2, 0.99, 0) == 0 && asr_vad_chunk_index(c, 2, 1.0, 0) == 1, "chunk index bisects");

    float a[70000];
    for (int i = 0; i < 70000; i++) a[i] = (float)i;
    float *out = NULL;
    size_t n = 0;
    asr_error err;
    CHECK(asr_vad_collect(a, 70000, c, 2, &out, &n, &err) == ASR_OK && n == 32000 && out[0] == 16000.0f &&
              out[15999] == 31999.0f && out[16000] == 48000.0f && out[31999] == 63999.0f,
          "collect joins the chunks' samples");
    free(out);
    CHECK(asr_vad_collect(a, 50000, c, 2, &out, &n, &err) == ASR_ERR_INVALID_ARGUMENT && !out,
          "a chunk past the audio is refused: %s", err.message);
    CHECK(asr_vad_collect(a, 70000, NULL, 0, &out, &n, &err) == ASR_OK && !out && n == 0, "no chunks: no audio");
}

int main(void)
{
    test_reflect_pad();
    test_conv();
    test_lstm();
    test_parser();
    test_probs();
    test_segments();
    test_time_map();
    return CHECK_DONE();
}
