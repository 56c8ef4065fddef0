/* vad.c — Silero VAD v6 (16 kHz) in plain C: the weight file parser, the per-frame forward pass, and
 * faster-whisper's speech chunking (get_speech_timestamps, collect_chunks, SpeechTimestampsMap). */
#include "vad.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration: the shapes of the v6 16 kHz graph -------------------- */

enum {
    VAD_FRAME = ASR_VAD_FRAME_SAMPLES,  /* 512 new samples per step (32 ms)       */
    VAD_CONTEXT = 64,                   /* samples of the previous frame it sees  */
    VAD_INPUT = VAD_FRAME + VAD_CONTEXT, /* 576                                  */
    VAD_N_FFT = 256,                    /* STFT window, as a conv kernel          */
    VAD_HOP = 128,                      /* STFT stride                            */
    VAD_PAD = 128,                      /* reflect padding each side              */
    VAD_PADDED = VAD_INPUT + 2 * VAD_PAD, /* 832                                 */
    VAD_N_FREQ = VAD_N_FFT / 2 + 1,     /* 129 bins                               */
    VAD_STFT_ALL = (VAD_PADDED - VAD_N_FFT) / VAD_HOP + 1, /* 5 STFT frames      */
    VAD_STFT_T = VAD_STFT_ALL - 1,      /* 4: the graph drops the first one       */
    VAD_C0 = 128, VAD_C1 = 64, VAD_C2 = 64, VAD_C3 = 128, /* encoder channels     */
    VAD_HIDDEN = 128,                   /* LSTM width                             */
    VAD_N_TENSORS = 14,
};

static const int conv_in[4] = {VAD_N_FREQ, VAD_C0, VAD_C1, VAD_C2};
static const int conv_out[4] = {VAD_C0, VAD_C1, VAD_C2, VAD_C3};
static const int conv_stride[4] = {1, 2, 2, 1};

/* ---- weights: pointers into the weight file ------------------------------ */

typedef struct vad_weights {
    const float *stft_basis;  /* (2*129, 1, 256): windowed cos rows, then sin rows */
    const float *conv_w[4];   /* (c_out, c_in, 3): 129→128, 128→64 /2, 64→64 /2, 64→128 */
    const float *conv_b[4];   /* (c_out)                                     */
    const float *lstm_w;      /* (1, 4*128, 128) input weights, gates i,o,f,c */
    const float *lstm_r;      /* (1, 4*128, 128) recurrent weights           */
    const float *lstm_b;      /* (1, 8*128) input biases, then recurrent ones */
    const float *dec_w;       /* (1, 128, 1) the 1x1 output conv             */
    const float *dec_b;       /* (1)                                         */
} vad_weights;

struct asr_vad_model {
    vad_weights w;
    void *owned; /* the file's bytes when loaded from a file or memory; NULL for the built-in copy */
};

/* ---- state: one run over one audio --------------------------------------- */

typedef struct vad_state {
    float h[VAD_HIDDEN], c[VAD_HIDDEN];  /* LSTM state, carried frame to frame */
    float input[VAD_INPUT];              /* 64 context samples + the frame     */
    float padded[VAD_PADDED];
    float mag[VAD_N_FREQ * VAD_STFT_T];  /* (129, 4) STFT magnitude            */
    float a0[VAD_C0 * 4], a1[VAD_C1 * 2], a2[VAD_C2 * 1], a3[VAD_C3 * 1];
    float gates[4 * VAD_HIDDEN];
} vad_state;

/* ---- the weight file (format in tools/convert_silero_vad.py) ------------- */

typedef struct tensor_spec {
    const char *name;
    int n_dims;
    uint32_t dims[3];
} tensor_spec;

static const tensor_spec specs[VAD_N_TENSORS] = {
    {"stft.basis", 3, {2 * VAD_N_FREQ, 1, VAD_N_FFT}},
    {"conv0.weight", 3, {VAD_C0, VAD_N_FREQ, 3}}, {"conv0.bias", 1, {VAD_C0}},
    {"conv1.weight", 3, {VAD_C1, VAD_C0, 3}},     {"conv1.bias", 1, {VAD_C1}},
    {"conv2.weight", 3, {VAD_C2, VAD_C1, 3}},     {"conv2.bias", 1, {VAD_C2}},
    {"conv3.weight", 3, {VAD_C3, VAD_C2, 3}},     {"conv3.bias", 1, {VAD_C3}},
    {"lstm.w", 3, {1, 4 * VAD_HIDDEN, VAD_C3}},   {"lstm.r", 3, {1, 4 * VAD_HIDDEN, VAD_HIDDEN}},
    {"lstm.b", 2, {1, 8 * VAD_HIDDEN}},
    {"decoder.weight", 3, {1, VAD_HIDDEN, 1}},    {"decoder.bias", 1, {1}},
};

static uint32_t read_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Point w's tensors into data[0, size), which must be 4-byte aligned. Every
 * length is checked against what is left before it is used. */
static asr_status parse_weights(const unsigned char *data, size_t size, vad_weights *w, asr_error *err)
{
    if (!host_is_little_endian()) return asr_fail(err, ASR_ERR_UNSUPPORTED, "VAD weights need a little-endian CPU");
    if (size < 16 || memcmp(data, "ASRVAD\0\0", 8) != 0)
        return asr_fail(err, ASR_ERR_MODEL, "not a VAD weight file (bad magic)");
    if (read_u32(data + 8) != 1)
        return asr_fail(err, ASR_ERR_MODEL, "VAD weight file version %u is not supported", read_u32(data + 8));
    if (read_u32(data + 12) != VAD_N_TENSORS)
        return asr_fail(err, ASR_ERR_MODEL, "VAD weight file has %u tensors, expected %d", read_u32(data + 12),
                        VAD_N_TENSORS);
    const float *found[VAD_N_TENSORS] = {0};
    size_t pos = 16;
    for (int t = 0; t < VAD_N_TENSORS; t++) {
        if (size - pos < 4) return asr_fail(err, ASR_ERR_MODEL, "VAD weight file is truncated");
        uint32_t name_len = read_u32(data + pos);
        pos += 4;
        size_t padded_len = ((size_t)name_len + 3) & ~(size_t)3;
        if (name_len < 1 || name_len > 64 || size - pos < padded_len + 4)
            return asr_fail(err, ASR_ERR_MODEL, "VAD weight file: bad or truncated tensor name");
        const char *name = (const char *)data + pos;
        pos += padded_len;
        int k = -1;
        for (int i = 0; i < VAD_N_TENSORS; i++)
            if (strlen(specs[i].name) == name_len && memcmp(specs[i].name, name, name_len) == 0) k = i;
        if (k < 0) return asr_fail(err, ASR_ERR_MODEL, "VAD weight file: unknown tensor '%.*s'", (int)name_len, name);
        if (found[k]) return asr_fail(err, ASR_ERR_MODEL, "VAD weight file: tensor %s appears twice", specs[k].name);
        uint32_t n_dims = read_u32(data + pos);
        pos += 4;
        if (n_dims != (uint32_t)specs[k].n_dims || size - pos < 4 * (size_t)n_dims)
            return asr_fail(err, ASR_ERR_MODEL, "VAD weight file: tensor %s has %u dimensions, expected %d",
                            specs[k].name, n_dims, specs[k].n_dims);
        size_t count = 1;
        for (uint32_t d = 0; d < n_dims; d++) {
            uint32_t dim = read_u32(data + pos + 4 * d);
            if (dim != specs[k].dims[d])
                return asr_fail(err, ASR_ERR_MODEL, "VAD weight file: tensor %s has dimension %u = %u, expected %u",
                                specs[k].name, d, dim, specs[k].dims[d]);
            count *= dim; /* bounded: every dim matched a small constant */
        }
        pos += 4 * (size_t)n_dims;
        if (size - pos < count * sizeof(float))
            return asr_fail(err, ASR_ERR_MODEL, "VAD weight file: tensor %s is truncated", specs[k].name);
        found[k] = (const float *)(const void *)(data + pos);
        for (size_t i = 0; i < count; i++)
            if (!isfinite(found[k][i]))
                return asr_fail(err, ASR_ERR_MODEL, "VAD weight file: tensor %s has a non-finite value", specs[k].name);
        pos += count * sizeof(float);
    }
    if (pos != size) return asr_fail(err, ASR_ERR_MODEL, "VAD weight file has %zu bytes after the last tensor", size - pos);
    *w = (vad_weights){
        .stft_basis = found[0],
        .conv_w = {found[1], found[3], found[5], found[7]},
        .conv_b = {found[2], found[4], found[6], found[8]},
        .lstm_w = found[9],
        .lstm_r = found[10],
        .lstm_b = found[11],
        .dec_w = found[12],
        .dec_b = found[13],
    };
    return ASR_OK;
}

asr_status asr_vad_model_load_memory(const void *data, size_t size, asr_vad_model **out, asr_error *err)
{
    asr_error_clear(err);
    if (!out || (!data && size)) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_vad_model_load_memory: NULL argument");
    *out = NULL;
    asr_vad_model *m = calloc(1, sizeof *m);
    void *copy = malloc(size ? size : 1); /* malloc's alignment suits floats */
    if (!m || !copy) {
        free(m);
        free(copy);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    }
    if (size) memcpy(copy, data, size);
    asr_status s = parse_weights(copy, size, &m->w, err);
    if (s != ASR_OK) {
        free(copy);
        free(m);
        return s;
    }
    m->owned = copy;
    *out = m;
    return ASR_OK;
}

asr_status asr_vad_model_load(const char *path, asr_vad_model **out, asr_error *err)
{
    asr_error_clear(err);
    if (!out) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_vad_model_load: NULL argument");
    *out = NULL;
    if (!path) {
        asr_vad_model *m = calloc(1, sizeof *m);
        if (!m) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
        size_t size = (size_t)(asr_vad_builtin_end - asr_vad_builtin_data);
        asr_status s = parse_weights(asr_vad_builtin_data, size, &m->w, err);
        if (s != ASR_OK) {
            free(m);
            return s;
        }
        *out = m;
        return ASR_OK;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return asr_fail(err, ASR_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    /* the real file is 1.2 MB; anything far larger is not one */
    enum { MAX_FILE = 8 << 20 };
    unsigned char *buf = malloc(MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    }
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    asr_status s;
    if (bad) s = asr_fail(err, ASR_ERR_IO, "cannot read %s", path);
    else if (n > MAX_FILE) s = asr_fail(err, ASR_ERR_MODEL, "%s is too large for a VAD weight file", path);
    else s = asr_vad_model_load_memory(buf, n, out, err);
    free(buf);
    return s;
}

void asr_vad_model_free(asr_vad_model *model)
{
    if (!model) return;
    free(model->owned);
    free(model);
}

/* ---- the forward pass ------------------------------------------------------ */

void asr_vad_reflect_pad(const float *x, int n, int pad, float *out)
{
    for (int i = 0; i < n + 2 * pad; i++) {
        int j = i - pad;
        if (j < 0) j = -j;
        else if (j >= n) j = 2 * (n - 1) - j;
        out[i] = x[j];
    }
}

/* Sum of a[i]*b[i]: eight running sums the compiler keeps in one vector
 * register (the build forbids it to reorder a single sum itself). */
static float dot(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

int asr_vad_conv3_relu(const float *in, int c_in, int l_in, const float *w, const float *b, int c_out, int stride,
                       float *out)
{
    enum { MAX_COL = 3 * 256 };
    float col[MAX_COL]; /* the input under the kernel at one output step, laid out like a weight row */
    int l_out = (l_in - 1) / stride + 1;
    if (c_in * 3 > MAX_COL) return 0; /* not a shape of this network */
    for (int t = 0; t < l_out; t++) {
        for (int i = 0; i < c_in; i++)
            for (int k = 0; k < 3; k++) {
                int src = t * stride + k - 1;
                col[i * 3 + k] = src >= 0 && src < l_in ? in[(size_t)i * l_in + src] : 0.0f;
            }
        for (int o = 0; o < c_out; o++) {
            float acc = b[o] + dot(w + (size_t)o * c_in * 3, col, c_in * 3);
            out[(size_t)o * l_out + t] = acc > 0.0f ? acc : 0.0f;
        }
    }
    return l_out;
}

static float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

void asr_vad_lstm_step(const float *x, int n_in, const float *w, const float *r, const float *b, int n_hidden,
                       float *h, float *c, float *gates)
{
    for (int g = 0; g < 4 * n_hidden; g++) {
        gates[g] = (b[g] + b[4 * n_hidden + g]) + dot(w + (size_t)g * n_in, x, n_in) +
                   dot(r + (size_t)g * n_hidden, h, n_hidden);
    }
    const float *gi = gates, *go = gates + n_hidden, *gf = gates + 2 * n_hidden, *gc = gates + 3 * n_hidden;
    for (int j = 0; j < n_hidden; j++) {
        c[j] = sigmoidf(gf[j]) * c[j] + sigmoidf(gi[j]) * tanhf(gc[j]);
        h[j] = sigmoidf(go[j]) * tanhf(c[j]);
    }
}

/* Speech probability of s->input (context + frame); advances the LSTM state. */
static float vad_forward(const vad_weights *w, vad_state *s)
{
    /* STFT as the graph computes it: a stride-128 conv with windowed
     * cos/sin kernels over the reflect-padded input, magnitude, first frame
     * dropped. */
    asr_vad_reflect_pad(s->input, VAD_INPUT, VAD_PAD, s->padded);
    for (int t = 0; t < VAD_STFT_T; t++) {
        const float *x = s->padded + (t + 1) * VAD_HOP;
        for (int k = 0; k < VAD_N_FREQ; k++) {
            const float *cr = w->stft_basis + (size_t)k * VAD_N_FFT;
            const float *ci = w->stft_basis + (size_t)(VAD_N_FREQ + k) * VAD_N_FFT;
            float re = dot(cr, x, VAD_N_FFT), im = dot(ci, x, VAD_N_FFT);
            s->mag[k * VAD_STFT_T + t] = sqrtf(re * re + im * im);
        }
    }
    /* encoder: (129, 4) → (128, 4) → (64, 2) → (64, 1) → (128, 1) */
    float *acts[5] = {s->mag, s->a0, s->a1, s->a2, s->a3};
    int len = VAD_STFT_T;
    for (int l = 0; l < 4; l++)
        len = asr_vad_conv3_relu(acts[l], conv_in[l], len, w->conv_w[l], w->conv_b[l], conv_out[l], conv_stride[l],
                                 acts[l + 1]);
    /* one LSTM step per frame, then ReLU, 1x1 conv, sigmoid */
    asr_vad_lstm_step(s->a3, VAD_C3, w->lstm_w, w->lstm_r, w->lstm_b, VAD_HIDDEN, s->h, s->c, s->gates);
    float logit = w->dec_b[0];
    for (int j = 0; j < VAD_HIDDEN; j++) logit += w->dec_w[j] * (s->h[j] > 0.0f ? s->h[j] : 0.0f);
    return sigmoidf(logit);
}

asr_status asr_vad_probs(const asr_vad_model *model, const float *samples, size_t n_samples, float **probs,
                         size_t *n_probs, asr_error *err)
{
    asr_error_clear(err);
    if (!model || !probs || !n_probs || (!samples && n_samples))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_vad_probs: NULL argument");
    *probs = NULL;
    *n_probs = 0;
    size_t n_frames = n_samples / VAD_FRAME + 1;
    float *p = malloc(n_frames * sizeof *p);
    vad_state *s = calloc(1, sizeof *s);
    if (!p || !s) {
        free(p);
        free(s);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    }
    /* frame f sees the last 64 samples of frame f-1 (zeros before the first) */
    for (size_t f = 0; f < n_frames; f++) {
        size_t from = f * VAD_FRAME;
        size_t take = from < n_samples ? n_samples - from : 0;
        if (take > VAD_FRAME) take = VAD_FRAME;
        float *frame = s->input + VAD_CONTEXT;
        memmove(s->input, s->input + VAD_FRAME, VAD_CONTEXT * sizeof(float)); /* last frame's tail */
        if (take) memcpy(frame, samples + from, take * sizeof(float));
        memset(frame + take, 0, (VAD_FRAME - take) * sizeof(float));
        p[f] = vad_forward(&model->w, s);
    }
    free(s);
    *probs = p;
    *n_probs = n_frames;
    return ASR_OK;
}

/* ---- incremental probabilities for live audio ------------------------------- */

struct asr_vad_stream {
    const asr_vad_model *model;
    vad_state state;
};

asr_status asr_vad_stream_new(const asr_vad_model *model, asr_vad_stream **out, asr_error *err)
{
    asr_error_clear(err);
    if (!model || !out) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_vad_stream_new: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    (*out)->model = model;
    return ASR_OK;
}

float asr_vad_stream_push(asr_vad_stream *stream, const float *frame)
{
    vad_state *s = &stream->state;
    memmove(s->input, s->input + VAD_FRAME, VAD_CONTEXT * sizeof(float)); /* last frame's tail */
    memcpy(s->input + VAD_CONTEXT, frame, VAD_FRAME * sizeof(float));
    return vad_forward(&stream->model->w, s);
}

void asr_vad_stream_reset(asr_vad_stream *stream)
{
    if (stream) memset(&stream->state, 0, sizeof stream->state);
}

void asr_vad_stream_free(asr_vad_stream *stream) { free(stream); }

/* ---- speech chunks: faster-whisper's get_speech_timestamps() --------------- */

asr_vad_params asr_vad_default_params(void)
{
    return (asr_vad_params){
        .threshold = 0.5,
        .neg_threshold = NAN,
        .min_speech_duration_ms = 0,
        .max_speech_duration_s = INFINITY,
        .min_silence_duration_ms = 2000,
        .speech_pad_ms = 400,
    };
}

static asr_status check_vad_params(const asr_vad_params *p, asr_error *err)
{
    if (!(p->threshold >= 0.0 && p->threshold <= 1.0))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "VAD threshold must be in [0, 1]");
    if (!isnan(p->neg_threshold) && !(p->neg_threshold >= 0.0 && p->neg_threshold <= 1.0))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "VAD neg_threshold must be in [0, 1] (or NAN)");
    if (p->min_speech_duration_ms < 0 || p->min_silence_duration_ms < 0 || p->speech_pad_ms < 0 ||
        p->min_speech_duration_ms > 3600000 || p->min_silence_duration_ms > 3600000 || p->speech_pad_ms > 3600000)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "VAD durations must be between 0 and one hour");
    if (!(p->max_speech_duration_s > 0.0))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "VAD max_speech_duration_s must be positive");
    return ASR_OK;
}

/* Python's a // b for b > 0 */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

typedef struct seg_list {
    asr_vad_segment *v;
    size_t n, cap;
} seg_list;

/* Chunks hold int64 while they are worked on: the padding can push a start
 * below zero before it is clamped, as in the Python. */
typedef struct raw_seg {
    int64_t start, end;
} raw_seg;

static int raw_push(raw_seg **v, size_t *n, size_t *cap, int64_t start, int64_t end)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        raw_seg *nv = realloc(*v, c * sizeof *nv);
        if (!nv) return 0;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = (raw_seg){start, end};
    return 1;
}

asr_status asr_vad_segments_from_probs(const float *probs, size_t n_probs, size_t n_samples,
                                       const asr_vad_params *params, asr_vad_segment **segments, size_t *n_segments,
                                       asr_error *err)
{
    asr_error_clear(err);
    if (!segments || !n_segments || (!probs && n_probs))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_vad_segments_from_probs: NULL argument");
    *segments = NULL;
    *n_segments = 0;
    asr_vad_params p = params ? *params : asr_vad_default_params();
    asr_status st = check_vad_params(&p, err);
    if (st != ASR_OK) return st;
    if (n_samples > ((size_t)1 << 50))
        return asr_fail(err, ASR_ERR_TOO_LARGE, "audio too long for the VAD");

    const double sr = ASR_SAMPLE_RATE;
    const int64_t window = VAD_FRAME;
    const double threshold = p.threshold;
    double neg_threshold = p.neg_threshold;
    if (isnan(neg_threshold)) neg_threshold = fmax(threshold - 0.15, 0.01);
    const double min_speech_samples = sr * p.min_speech_duration_ms / 1000;
    const double speech_pad_samples = sr * p.speech_pad_ms / 1000;
    const double max_speech_samples = sr * p.max_speech_duration_s - window - 2 * speech_pad_samples;
    const double min_silence_samples = sr * p.min_silence_duration_ms / 1000;
    const double min_silence_samples_at_max_speech = sr * 98 / 1000;
    const int64_t audio_length = (int64_t)n_samples;

    raw_seg *v = NULL;
    size_t n = 0, cap = 0;
    int triggered = 0, have_current = 0;
    int64_t cur_start = 0;
    int64_t temp_end = 0, prev_end = 0, next_start = 0;
    for (size_t i = 0; i < n_probs; i++) {
        const double prob = probs[i];
        const int64_t pos = window * (int64_t)i;
        if (prob >= threshold && temp_end) {
            temp_end = 0;
            if (next_start < prev_end) next_start = pos;
        }
        if (prob >= threshold && !triggered) {
            triggered = 1;
            have_current = 1;
            cur_start = pos;
            continue;
        }
        if (triggered && (double)(pos - cur_start) > max_speech_samples) {
            if (prev_end) {
                if (!raw_push(&v, &n, &cap, cur_start, prev_end)) goto oom;
                have_current = 0;
                /* previously reached silence (< neg_threshold) and still not speech (< threshold) */
                if (next_start < prev_end) {
                    triggered = 0;
                } else {
                    have_current = 1;
                    cur_start = next_start;
                }
                prev_end = next_start = temp_end = 0;
            } else {
                if (!raw_push(&v, &n, &cap, cur_start, pos)) goto oom;
                have_current = 0;
                prev_end = next_start = temp_end = 0;
                triggered = 0;
                continue;
            }
        }
        if (prob < neg_threshold && triggered) {
            if (!temp_end) temp_end = pos;
            /* do not cut in a very short silence */
            if ((double)(pos - temp_end) > min_silence_samples_at_max_speech) prev_end = temp_end;
            if ((double)(pos - temp_end) < min_silence_samples) continue;
            if ((double)(temp_end - cur_start) > min_speech_samples)
                if (!raw_push(&v, &n, &cap, cur_start, temp_end)) goto oom;
            have_current = 0;
            prev_end = next_start = temp_end = 0;
            triggered = 0;
            continue;
        }
    }
    if (have_current && (double)(audio_length - cur_start) > min_speech_samples)
        if (!raw_push(&v, &n, &cap, cur_start, audio_length)) goto oom;

    /* padding: int() of a non-negative double is its floor */
    for (size_t i = 0; i < n; i++) {
        if (i == 0) v[i].start = (int64_t)fmax(0.0, (double)v[i].start - speech_pad_samples);
        if (i != n - 1) {
            int64_t silence = v[i + 1].start - v[i].end;
            if ((double)silence < 2 * speech_pad_samples) {
                v[i].end += floor_div(silence, 2);
                int64_t ns = v[i + 1].start - floor_div(silence, 2);
                v[i + 1].start = ns > 0 ? ns : 0;
            } else {
                v[i].end = (int64_t)fmin((double)audio_length, (double)v[i].end + speech_pad_samples);
                v[i + 1].start = (int64_t)fmax(0.0, (double)v[i + 1].start - speech_pad_samples);
            }
        } else {
            v[i].end = (int64_t)fmin((double)audio_length, (double)v[i].end + speech_pad_samples);
        }
    }
    if (n) {
        asr_vad_segment *out = malloc(n * sizeof *out);
        if (!out) goto oom;
        for (size_t i = 0; i < n; i++) {
            /* always within [0, n_samples] by construction; clamp so a caller slicing with them is safe */
            int64_t a = v[i].start < 0 ? 0 : v[i].start > audio_length ? audio_length : v[i].start;
            int64_t b = v[i].end < a ? a : v[i].end > audio_length ? audio_length : v[i].end;
            out[i] = (asr_vad_segment){(size_t)a, (size_t)b};
        }
        *segments = out;
        *n_segments = n;
    }
    free(v);
    return ASR_OK;
oom:
    free(v);
    return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
}

asr_status asr_vad_segments(const asr_vad_model *model, const float *samples, size_t n_samples,
                            const asr_vad_params *params, asr_vad_segment **segments, size_t *n_segments,
                            asr_error *err)
{
    asr_error_clear(err);
    if (!segments || !n_segments) return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_vad_segments: NULL argument");
    *segments = NULL;
    *n_segments = 0;
    if (params) {
        asr_status s = check_vad_params(params, err);
        if (s != ASR_OK) return s;
    }
    float *probs = NULL;
    size_t n_probs = 0;
    asr_status s = asr_vad_probs(model, samples, n_samples, &probs, &n_probs, err);
    if (s == ASR_OK) s = asr_vad_segments_from_probs(probs, n_probs, n_samples, params, segments, n_segments, err);
    free(probs);
    return s;
}

/* ---- collect_chunks() and SpeechTimestampsMap -------------------------------- */

asr_status asr_vad_collect(const float *samples, size_t n_samples, const asr_vad_segment *segments, size_t n_segments,
                           float **out, size_t *n_out, asr_error *err)
{
    asr_error_clear(err);
    if (!out || !n_out || (!samples && n_samples) || (!segments && n_segments))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "asr_vad_collect: NULL argument");
    *out = NULL;
    *n_out = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_segments; i++) {
        if (segments[i].start > segments[i].end || segments[i].end > n_samples)
            return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "VAD chunk %zu is outside the audio", i);
        total += segments[i].end - segments[i].start;
    }
    if (!total) return ASR_OK;
    float *buf = malloc(total * sizeof *buf);
    if (!buf) return asr_fail(err, ASR_ERR_NO_MEMORY, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n_segments; i++) {
        size_t len = segments[i].end - segments[i].start;
        memcpy(buf + o, samples + segments[i].start, len * sizeof *buf);
        o += len;
    }
    *out = buf;
    *n_out = total;
    return ASR_OK;
}

/* The end of chunk i in the collected audio: its end less the silence before it. */
static int64_t collected_end(const asr_vad_segment *seg, size_t i, int64_t *silence_before)
{
    int64_t silent = 0, prev = 0;
    for (size_t k = 0; k <= i; k++) {
        silent += (int64_t)seg[k].start - prev;
        prev = (int64_t)seg[k].end;
    }
    if (silence_before) *silence_before = silent;
    return (int64_t)seg[i].end - silent;
}

size_t asr_vad_chunk_index(const asr_vad_segment *segments, size_t n_segments, double t, int is_end)
{
    if (!segments || n_segments == 0) return 0;
    double sd = t * ASR_SAMPLE_RATE;
    int64_t sample = isnan(sd) ? 0 : sd > 9e15 ? (int64_t)9e15 : sd < -9e15 ? (int64_t)-9e15 : (int64_t)sd;
    /* one pass: the collected ends are non-decreasing */
    int64_t silent = 0, prev = 0;
    size_t upper = n_segments; /* bisect_right: first end > sample */
    for (size_t k = 0; k < n_segments; k++) {
        silent += (int64_t)segments[k].start - prev;
        prev = (int64_t)segments[k].end;
        int64_t end = (int64_t)segments[k].end - silent;
        if (is_end && end == sample) return k;
        if (end > sample && upper == n_segments) upper = k;
    }
    return upper < n_segments - 1 ? upper : n_segments - 1;
}

/* Python's round(x, 2): correctly rounded, which glibc's printf is. */
static double round_centi(double x)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.2f", x);
    return strtod(buf, NULL);
}

double asr_vad_original_time(const asr_vad_segment *segments, size_t n_segments, double t, long chunk, int is_end)
{
    if (!segments || n_segments == 0) return t;
    size_t i = chunk < 0 || (size_t)chunk >= n_segments ? asr_vad_chunk_index(segments, n_segments, t, is_end)
                                                         : (size_t)chunk;
    int64_t silent = 0;
    collected_end(segments, i, &silent);
    if (!isfinite(t)) return t;
    return round_centi((double)silent / ASR_SAMPLE_RATE + t);
}
