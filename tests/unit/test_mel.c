/* test_mel.c — the log-mel frontend against openai/whisper's filters and a numpy reference.
 *
 *   test_mel                      filterbank vs ../shared/testdata/mel_filters.npz,
 *                                 FFT path vs a direct float64 DFT, error cases
 *   test_mel --reference REF.npy --wav IN.wav [--n-mels 80] [--padding N]
 *                                 also: log-mel of IN.wav vs REF.npy (written by
 *                                 tests/tools/mel_reference.py), max abs diff <= 1e-4
 */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- a small .npy / .npz reader ------------------------------------------ */

typedef struct npy_array {
    float *data; /* row-major, converted to float */
    int rows, cols;
} npy_array;

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static unsigned char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Parse an .npy image of a 1-D or 2-D little-endian f4/f8 C-order array. */
static int npy_parse(const unsigned char *p, size_t len, npy_array *out)
{
    if (len < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
        return -1;
    size_t hlen, hoff;
    if (p[6] == 1) {
        hlen = rd16(p + 8);
        hoff = 10;
    } else {
        if (len < 12)
            return -1;
        hlen = rd32(p + 8);
        hoff = 12;
    }
    if (hoff + hlen > len)
        return -1;
    char header[1024];
    if (hlen >= sizeof header)
        return -1;
    memcpy(header, p + hoff, hlen);
    header[hlen] = '\0';
    int elem;
    if (strstr(header, "'<f4'"))
        elem = 4;
    else if (strstr(header, "'<f8'"))
        elem = 8;
    else
        return -1;
    if (strstr(header, "'fortran_order': True"))
        return -1;
    const char *shape = strstr(header, "'shape': (");
    if (!shape)
        return -1;
    long a = 0, b = 1;
    int n = sscanf(shape + 10, "%ld, %ld", &a, &b);
    if (n < 1 || a <= 0 || b <= 0)
        return -1;
    size_t count = (size_t)a * (size_t)b;
    const unsigned char *data = p + hoff + hlen;
    if ((size_t)(p + len - data) < count * (size_t)elem)
        return -1;
    out->data = malloc(count * sizeof(float));
    if (!out->data)
        return -1;
    for (size_t i = 0; i < count; i++) {
        if (elem == 4) {
            uint32_t u = rd32(data + 4 * i);
            memcpy(&out->data[i], &u, 4);
        } else {
            uint64_t u = rd64(data + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            out->data[i] = (float)d;
        }
    }
    out->rows = (int)a;
    out->cols = (int)b;
    return 0;
}

/* Find `name` in a zip archive (via its central directory, zip64 sizes
 * included), inflate or copy it, and parse it as .npy. */
static int npz_load(const char *path, const char *name, npy_array *out)
{
    size_t len = 0;
    unsigned char *zip = read_whole(path, &len);
    if (!zip)
        return -1;
    int rc = -1;
    size_t eocd = len >= 22 ? len - 22 : 0;
    while (eocd > 0 && rd32(zip + eocd) != 0x06054b50)
        eocd--;
    if (len < 22 || rd32(zip + eocd) != 0x06054b50)
        goto done;
    size_t n_entries = rd16(zip + eocd + 10), cd = rd32(zip + eocd + 16);
    for (size_t e = 0; e < n_entries && cd + 46 <= len; e++) {
        const unsigned char *c = zip + cd;
        if (rd32(c) != 0x02014b50)
            break;
        unsigned method = rd16(c + 10);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), loff = rd32(c + 42);
        size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        if (cd + 46 + nlen + xlen > len)
            break;
        /* zip64 extra field (id 1): the 0xFFFFFFFF fields, in order. */
        for (size_t x = 0; x + 4 <= xlen;) {
            const unsigned char *f = c + 46 + nlen + x;
            size_t fl = rd16(f + 2), o = 4;
            if (rd16(f) == 1) {
                if (usize == 0xFFFFFFFFu && o + 8 <= 4 + fl) usize = rd64(f + o), o += 8;
                if (csize == 0xFFFFFFFFu && o + 8 <= 4 + fl) csize = rd64(f + o), o += 8;
                if (loff == 0xFFFFFFFFu && o + 8 <= 4 + fl) loff = rd64(f + o);
            }
            x += 4 + fl;
        }
        if (nlen == strlen(name) && memcmp(c + 46, name, nlen) == 0) {
            if (loff + 30 > len || rd32(zip + loff) != 0x04034b50)
                goto done;
            size_t data_off = loff + 30 + rd16(zip + loff + 26) + rd16(zip + loff + 28);
            if (data_off + csize > len || usize > (64u << 20))
                goto done;
            unsigned char *raw = malloc(usize ? usize : 1);
            if (!raw)
                goto done;
            if (method == 0 && csize == usize) {
                memcpy(raw, zip + data_off, usize);
            } else if (method == 8) {
                z_stream zs = {0};
                if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
                    free(raw);
                    goto done;
                }
                zs.next_in = zip + data_off;
                zs.avail_in = (uInt)csize;
                zs.next_out = raw;
                zs.avail_out = (uInt)usize;
                int zr = inflate(&zs, Z_FINISH);
                inflateEnd(&zs);
                if (zr != Z_STREAM_END || zs.total_out != usize) {
                    free(raw);
                    goto done;
                }
            } else {
                free(raw);
                goto done;
            }
            rc = npy_parse(raw, usize, out);
            free(raw);
            goto done;
        }
        cd += 46 + nlen + xlen + clen;
    }
done:
    free(zip);
    return rc;
}

/* ---- checks ---------------------------------------------------------------- */

static const char *shared_dir(void)
{
    const char *s = getenv("ASR_SHARED");
    return s && *s ? s : "../shared";
}

static void check_filters(int n_mels)
{
    char path[1024], name[32];
    snprintf(path, sizeof path, "%s/testdata/mel_filters.npz", shared_dir());
    snprintf(name, sizeof name, "mel_%d.npy", n_mels);
    npy_array ref = {0};
    int rc = npz_load(path, name, &ref);
    CHECK(rc == 0, "read %s from %s", name, path);
    if (rc != 0)
        return;
    CHECK(ref.rows == n_mels && ref.cols == ASR_N_FREQ, "%s is %dx%d", name, ref.rows, ref.cols);
    float *mine = malloc(sizeof(float) * (size_t)n_mels * ASR_N_FREQ);
    asr_error err;
    CHECK(asr_mel_filters(n_mels, mine, &err) == ASR_OK, "asr_mel_filters(%d)", n_mels);
    double max_diff = 0, max_ref = 0;
    for (int i = 0; i < n_mels * ASR_N_FREQ; i++) {
        max_diff = fmax(max_diff, fabs((double)mine[i] - ref.data[i]));
        max_ref = fmax(max_ref, fabs(ref.data[i]));
    }
    CHECK(max_ref > 0.01, "reference filters are not all zero (max %g)", max_ref);
    CHECK(max_diff <= 1e-6, "mel_%d filters max abs diff %.3g <= 1e-6", n_mels, max_diff);
    free(mine);
    free(ref.data);
}

/* The log-mel pipeline done the slow, obvious way: a direct float64 DFT per
 * frame with the reflect padding written out — an independent check of the
 * FFT, the framing and the edge handling. */
static float *slow_log_mel(const float *x, size_t n, size_t pad, int n_mels, int *n_frames)
{
    const size_t total = n + pad, frames = total / ASR_HOP_LENGTH;
    const long long ext_len = (long long)total + ASR_N_FFT;
    float *ext = calloc((size_t)ext_len, sizeof(float)); /* reflect-padded signal */
    for (long long i = 0; i < ext_len; i++) {
        long long j = i - ASR_N_FFT / 2;
        if (j < 0)
            j = -j;
        if (j >= (long long)total)
            j = 2 * ((long long)total - 1) - j;
        ext[i] = (size_t)j < n ? x[j] : 0.0f;
    }
    float *filters = malloc(sizeof(float) * (size_t)n_mels * ASR_N_FREQ);
    asr_mel_filters(n_mels, filters, NULL);
    float *out = malloc(sizeof(float) * (size_t)n_mels * frames);
    double power[ASR_N_FREQ];
    float mx = -INFINITY;
    for (size_t t = 0; t < frames; t++) {
        for (int k = 0; k < ASR_N_FREQ; k++) {
            double re = 0, im = 0;
            for (int i = 0; i < ASR_N_FFT; i++) {
                double w = 0.5 - 0.5 * cos(2 * M_PI * i / ASR_N_FFT);
                double v = ext[t * ASR_HOP_LENGTH + i] * w;
                re += v * cos(2 * M_PI * k * i / ASR_N_FFT);
                im -= v * sin(2 * M_PI * k * i / ASR_N_FFT);
            }
            power[k] = re * re + im * im;
        }
        for (int m = 0; m < n_mels; m++) {
            double acc = 0;
            for (int k = 0; k < ASR_N_FREQ; k++)
                acc += filters[m * ASR_N_FREQ + k] * power[k];
            float v = (float)log10(fmax(acc, 1e-10));
            out[(size_t)m * frames + t] = v;
            mx = fmaxf(mx, v);
        }
    }
    for (size_t i = 0; i < (size_t)n_mels * frames; i++)
        out[i] = (fmaxf(out[i], mx - 8.0f) + 4.0f) / 4.0f;
    free(ext);
    free(filters);
    *n_frames = (int)frames;
    return out;
}

static void check_against_slow_dft(void)
{
    /* 0.25 s of a chirp plus deterministic noise, then 0.1 s of padding. */
    const size_t n = 4000, pad = 1600;
    float *x = malloc(n * sizeof(float));
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double noise = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.01;
        double t = (double)i / ASR_SAMPLE_RATE;
        x[i] = (float)(0.5 * sin(2 * M_PI * (200 + 3000 * t) * t) + noise);
    }
    int nf_slow = 0, nf = 0;
    float *slow = slow_log_mel(x, n, pad, 80, &nf_slow);
    float *fast = NULL;
    asr_error err;
    asr_status st = asr_log_mel(x, n, pad, 80, 1, &fast, &nf, &err);
    CHECK(st == ASR_OK, "asr_log_mel on a chirp: %s", err.message);
    CHECK(nf == (int)((n + pad) / ASR_HOP_LENGTH) && nf == nf_slow, "frames %d == %d", nf, nf_slow);
    if (st == ASR_OK && nf == nf_slow) {
        double max_diff = 0;
        for (size_t i = 0; i < (size_t)80 * nf; i++)
            max_diff = fmax(max_diff, fabs((double)fast[i] - slow[i]));
        CHECK(max_diff < 1e-5, "FFT log-mel vs direct DFT max abs diff %.3g < 1e-5", max_diff);
    }
    /* The same input split over 3 threads must give the same bits. */
    float *threaded = NULL;
    int nf3 = 0;
    st = asr_log_mel(x, n, pad, 80, 3, &threaded, &nf3, &err);
    CHECK(st == ASR_OK && nf3 == nf && fast && memcmp(threaded, fast, sizeof(float) * 80 * (size_t)nf) == 0,
          "3 threads give identical output");
    free(threaded);
    /* 128 bands (large-v3) come out with the right shape and finite values. */
    float *m128 = NULL;
    int nf128 = 0;
    st = asr_log_mel(x, n, pad, 128, 2, &m128, &nf128, &err);
    int finite = st == ASR_OK;
    for (size_t i = 0; finite && i < (size_t)128 * nf128; i++)
        finite = isfinite(m128[i]);
    CHECK(st == ASR_OK && nf128 == nf && finite, "128-band log-mel: %d frames, finite", nf128);
    free(m128);
    free(slow);
    free(fast);
    free(x);
}

static void check_errors(void)
{
    asr_error err;
    float *out = (float *)1;
    int nf = -1;
    float x[100] = {0};
    CHECK(asr_log_mel(x, 100, 0, 80, 1, &out, &nf, &err) == ASR_ERR_AUDIO && out == NULL && nf == 0,
          "100 samples (under one hop) is an audio error: %s", err.message);
    CHECK(asr_log_mel(NULL, 0, 0, 80, 1, &out, &nf, &err) == ASR_ERR_AUDIO, "empty input: %s",
          err.message);
    CHECK(asr_log_mel(x, 100, 0, 0, 1, &out, &nf, &err) == ASR_ERR_INVALID_ARGUMENT,
          "n_mels 0: %s", err.message);
    CHECK(asr_mel_filters(-3, x, &err) == ASR_ERR_INVALID_ARGUMENT, "filters n_mels -3: %s",
          err.message);
    /* Silence padded to 30 s: constant output, no NaN (log of the 1e-10 floor). */
    asr_status st = asr_log_mel(NULL, 0, ASR_N_SAMPLES, 80, 2, &out, &nf, &err);
    int all_floor = st == ASR_OK && nf == ASR_N_FRAMES;
    for (size_t i = 0; all_floor && i < (size_t)80 * nf; i++)
        all_floor = out[i] == (-10.0f + 4.0f) / 4.0f;
    CHECK(all_floor, "30 s of padding only: %d frames, all (log10(1e-10)+4)/4", nf);
    if (st == ASR_OK)
        free(out);
    /* Shorter than the 200-sample reflect pad: torch refuses, we reflect repeatedly. */
    float shortx[170];
    for (int i = 0; i < 170; i++)
        shortx[i] = (float)sin(i * 0.3);
    st = asr_log_mel(shortx, 170, 0, 80, 1, &out, &nf, &err);
    CHECK(st == ASR_OK && nf == 1, "170 samples → 1 frame");
    if (st == ASR_OK)
        free(out);
}

static void check_reference(const char *ref_path, const char *wav, int n_mels, size_t padding)
{
    size_t len = 0;
    unsigned char *raw = read_whole(ref_path, &len);
    npy_array ref = {0};
    int rc = raw ? npy_parse(raw, len, &ref) : -1;
    free(raw);
    CHECK(rc == 0, "read reference %s", ref_path);
    if (rc != 0)
        return;
    asr_audio audio = {0};
    asr_error err;
    asr_status st = asr_audio_decode_file(wav, NULL, &audio, &err);
    CHECK(st == ASR_OK, "decode %s: %s", wav, err.message);
    if (st != ASR_OK) {
        free(ref.data);
        return;
    }
    float *mel = NULL;
    int nf = 0;
    st = asr_log_mel(audio.samples, audio.n_samples, padding, n_mels, 2, &mel, &nf, &err);
    CHECK(st == ASR_OK, "log-mel of %s: %s", wav, err.message);
    CHECK(ref.rows == n_mels && ref.cols == nf, "shape (%d, %d) == reference (%d, %d)", n_mels, nf,
          ref.rows, ref.cols);
    if (st == ASR_OK && ref.rows == n_mels && ref.cols == nf) {
        double max_diff = 0, sum_diff = 0, spread = 0;
        for (size_t i = 0; i < (size_t)n_mels * nf; i++) {
            double d = fabs((double)mel[i] - ref.data[i]);
            max_diff = fmax(max_diff, d);
            sum_diff += d;
            spread = fmax(spread, fabs((double)ref.data[i] - ref.data[0]));
        }
        CHECK(spread > 0.5, "reference is not flat (spread %.3f)", spread);
        CHECK(max_diff <= 1e-4, "log-mel vs reference: max abs diff %.3g <= 1e-4 (mean %.3g)",
              max_diff, sum_diff / ((double)n_mels * nf));
    }
    free(mel);
    free(ref.data);
    asr_audio_free(&audio);
}

int main(int argc, char **argv)
{
    const char *ref = NULL, *wav = NULL;
    int n_mels = 80;
    size_t padding = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reference"))
            ref = argv[i + 1];
        else if (!strcmp(argv[i], "--wav"))
            wav = argv[i + 1];
        else if (!strcmp(argv[i], "--n-mels"))
            n_mels = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--padding"))
            padding = (size_t)atol(argv[i + 1]);
    }
    if (ref) {
        CHECK(wav != NULL, "--wav given with --reference");
        if (wav)
            check_reference(ref, wav, n_mels, padding);
        return CHECK_DONE();
    }
    check_filters(80);
    check_filters(128);
    check_against_slow_dft();
    check_errors();
    return CHECK_DONE();
}
