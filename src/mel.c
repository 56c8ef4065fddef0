/* mel.c — Whisper's log-mel spectrogram frontend (openai/whisper audio.py) in C. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEL_MAX_BANDS 512
#define FFT_MAX_FACTORS 8
#define FFT_MAX_RADIX 5

/* ---- mel filterbank (librosa.filters.mel, htk=False, norm="slaney") ---- */

/* librosa.hz_to_mel with the Slaney scale: linear below 1 kHz, log above. */
static double hz_to_mel_slaney(double hz)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0;
    const double min_log_mel = min_log_hz / f_sp, logstep = log(6.4) / 27.0;
    if (hz >= min_log_hz)
        return min_log_mel + log(hz / min_log_hz) / logstep;
    return hz / f_sp;
}

static double mel_to_hz_slaney(double mel)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0;
    const double min_log_mel = min_log_hz / f_sp, logstep = log(6.4) / 27.0;
    if (mel >= min_log_mel)
        return min_log_hz * exp(logstep * (mel - min_log_mel));
    return f_sp * mel;
}

asr_status asr_mel_filters(int n_mels, float *out, asr_error *err)
{
    if (n_mels < 1 || n_mels > MEL_MAX_BANDS || !out)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "mel filters: n_mels %d out of range 1..%d",
                        n_mels, MEL_MAX_BANDS);
    const double sr = ASR_SAMPLE_RATE, f_max = sr / 2.0;
    /* mel_f: n_mels + 2 band edges in Hz, evenly spaced on the mel scale
     * (np.linspace(min_mel, max_mel, n_mels + 2), then mel_to_hz). */
    double mel_f[MEL_MAX_BANDS + 2];
    const double min_mel = hz_to_mel_slaney(0.0), max_mel = hz_to_mel_slaney(f_max);
    const int n_edges = n_mels + 2;
    const double step = (max_mel - min_mel) / (n_edges - 1);
    for (int i = 0; i < n_edges; i++) {
        /* np.linspace computes start + i*step and pins the last point to stop. */
        double m = i == n_edges - 1 ? max_mel : min_mel + i * step;
        mel_f[i] = mel_to_hz_slaney(m);
    }
    for (int i = 0; i < n_mels; i++) {
        const double fdiff_lo = mel_f[i + 1] - mel_f[i];
        const double fdiff_hi = mel_f[i + 2] - mel_f[i + 1];
        const double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (int k = 0; k < ASR_N_FREQ; k++) {
            const double fft_freq = k * sr / ASR_N_FFT; /* np.fft.rfftfreq */
            const double lower = -(mel_f[i] - fft_freq) / fdiff_lo;
            const double upper = (mel_f[i + 2] - fft_freq) / fdiff_hi;
            double w = fmax(0.0, fmin(lower, upper));
            /* librosa stores the triangle in float32 before scaling by enorm. */
            out[(size_t)i * ASR_N_FREQ + k] = (float)((double)(float)w * enorm);
        }
    }
    return ASR_OK;
}

/* ---- the real DFT of size ASR_N_FFT ------------------------------------
 * The 400 real samples are packed as 200 complex ones (even + i odd), put
 * through a mixed-radix complex FFT of 200 = 4*2*5*5, and unpacked into the
 * 201 bins of the one-sided spectrum: half the work of a complex FFT of 400. */

typedef struct fft_plan {
    int n;                     /* complex FFT size: ASR_N_FFT / 2 */
    int n_factors;
    int factors[FFT_MAX_FACTORS];
    double tw_re[ASR_N_FFT], tw_im[ASR_N_FFT]; /* (n,) exp(-2 pi i k / n) */
    double post_re[ASR_N_FREQ], post_im[ASR_N_FREQ]; /* (201,) exp(-2 pi i k / ASR_N_FFT) */
} fft_plan;

static void fft_plan_init(fft_plan *plan, int n)
{
    plan->n = n;
    plan->n_factors = 0;
    int rest = n;
    static const int radices[] = {4, 2, 3, 5};
    for (size_t r = 0; r < sizeof radices / sizeof radices[0]; r++)
        while (rest % radices[r] == 0 && plan->n_factors < FFT_MAX_FACTORS - 1) {
            plan->factors[plan->n_factors++] = radices[r];
            rest /= radices[r];
        }
    /* n = 200 = 4*2*5*5, so rest is 1 here; a prime factor above
     * FFT_MAX_RADIX would need a larger butterfly buffer. */
    for (int k = 0; k < n; k++) {
        const double angle = -2.0 * M_PI * k / n;
        plan->tw_re[k] = cos(angle);
        plan->tw_im[k] = sin(angle);
    }
    for (int k = 0; k < ASR_N_FREQ; k++) {
        const double angle = -2.0 * M_PI * k / ASR_N_FFT;
        plan->post_re[k] = cos(angle);
        plan->post_im[k] = sin(angle);
    }
}

/* Decimation in time: out[0..n) = DFT of in[0], in[stride], ... (n values).
 * `level` indexes plan->factors; each level splits n into p sub-DFTs of n/p
 * and recombines them with a generic radix-p butterfly (p <= 5 here, so the
 * O(p^2) butterfly costs less than specialised code would save). */
static void fft_rec(const fft_plan *plan, const double *in_re, const double *in_im, int stride,
                    double *out_re, double *out_im, int n, int level)
{
    if (n == 1) {
        out_re[0] = in_re[0];
        out_im[0] = in_im[0];
        return;
    }
    const int p = plan->factors[level], m = n / p;
    for (int q = 0; q < p; q++)
        fft_rec(plan, in_re + q * stride, in_im + q * stride, stride * p, out_re + q * m,
                out_im + q * m, m, level + 1);
    const int tw_step = plan->n / n; /* W_n^e is tw[e * tw_step] */
    /* W_p^e for e in [0, p): the butterfly's own roots of unity. */
    double wp_re[FFT_MAX_RADIX], wp_im[FFT_MAX_RADIX];
    for (int e = 0; e < p; e++) {
        wp_re[e] = plan->tw_re[e * (plan->n / p)];
        wp_im[e] = plan->tw_im[e * (plan->n / p)];
    }
    double y_re[FFT_MAX_RADIX], y_im[FFT_MAX_RADIX];
    for (int k = 0; k < m; k++) {
        /* y_q = W_n^(q k) * Y_q[k], the twiddled inputs of this butterfly
         * (q k < n, so the index needs no reduction). */
        for (int q = 0; q < p; q++) {
            const int t = q * k * tw_step;
            const double a = out_re[q * m + k], b = out_im[q * m + k];
            y_re[q] = a * plan->tw_re[t] - b * plan->tw_im[t];
            y_im[q] = a * plan->tw_im[t] + b * plan->tw_re[t];
        }
        /* X[k + j m] = sum_q y_q W_p^(q j mod p) */
        for (int j = 0; j < p; j++) {
            double acc_re = y_re[0], acc_im = y_im[0];
            int e = 0;
            for (int q = 1; q < p; q++) {
                e += j;
                if (e >= p)
                    e -= p;
                acc_re += y_re[q] * wp_re[e] - y_im[q] * wp_im[e];
                acc_im += y_re[q] * wp_im[e] + y_im[q] * wp_re[e];
            }
            out_re[k + j * m] = acc_re;
            out_im[k + j * m] = acc_im;
        }
    }
}

/* power[k] = |DFT(x)[k]|^2 for k in [0, ASR_N_FREQ), x real of ASR_N_FFT. */
static void real_power_spectrum(const fft_plan *plan, const double *x, double *power)
{
    enum { M = ASR_N_FFT / 2 };
    double z_re[M], z_im[M], Z_re[M], Z_im[M];
    for (int n = 0; n < M; n++) {
        z_re[n] = x[2 * n];
        z_im[n] = x[2 * n + 1];
    }
    fft_rec(plan, z_re, z_im, 1, Z_re, Z_im, M, 0);
    /* With a = Z[k], b = conj(Z[M-k]): the even samples' DFT is (a+b)/2, the
     * odd samples' is (a-b)/2i, and X[k] = E[k] + W_N^k O[k]. */
    for (int k = 0; k < ASR_N_FREQ; k++) {
        const int ka = k % M, kb = (M - k) % M;
        const double a_re = Z_re[ka], a_im = Z_im[ka];
        const double b_re = Z_re[kb], b_im = -Z_im[kb];
        const double e_re = 0.5 * (a_re + b_re), e_im = 0.5 * (a_im + b_im);
        const double o_re = 0.5 * (a_im - b_im), o_im = -0.5 * (a_re - b_re);
        const double x_re = e_re + plan->post_re[k] * o_re - plan->post_im[k] * o_im;
        const double x_im = e_im + plan->post_re[k] * o_im + plan->post_im[k] * o_re;
        power[k] = x_re * x_re + x_im * x_im;
    }
}

/* ---- log-mel spectrogram ------------------------------------------------- */

typedef struct mel_job {
    /* shared, read-only */
    const float *samples;  /* (n_samples,) */
    size_t n_samples;
    size_t n_total;        /* n_samples + pad_samples: the signal torch.stft sees */
    const fft_plan *plan;
    const double *window;  /* (ASR_N_FFT,) periodic Hann */
    const float *filters;  /* (n_mels, ASR_N_FREQ) */
    const int *band_lo, *band_hi; /* (n_mels,) non-zero range of each filter */
    int n_mels;
    int n_frames;
    float *out;            /* (n_mels, n_frames) */
    /* per thread */
    int frame_begin, frame_end;
    float max_log;         /* max of log10 values this thread wrote */
} mel_job;

/* Sample i of the zero-padded signal extended by ASR_N_FFT/2 samples of
 * reflection on each side (torch.stft(center=True, pad_mode="reflect")).
 * For signals shorter than the pad, reflection repeats as numpy's "reflect"
 * does, where torch would refuse. */
static float padded_sample(const mel_job *job, long long i)
{
    const long long len = (long long)job->n_total;
    long long idx = i - ASR_N_FFT / 2;
    if (len == 1)
        idx = 0;
    else {
        const long long period = 2 * (len - 1);
        idx %= period;
        if (idx < 0)
            idx += period;
        if (idx >= len)
            idx = period - idx;
    }
    return (size_t)idx < job->n_samples ? job->samples[idx] : 0.0f;
}

static void *mel_worker(void *arg)
{
    mel_job *job = arg;
    double frame[ASR_N_FFT]; /* windowed samples */
    double power[ASR_N_FREQ];
    float max_log = -FLT_MAX;
    for (int t = job->frame_begin; t < job->frame_end; t++) {
        const long long start = (long long)t * ASR_HOP_LENGTH; /* in padded coordinates */
        const long long first = start - ASR_N_FFT / 2;
        if (first >= 0 && (size_t)(first + ASR_N_FFT) <= job->n_samples) {
            for (int i = 0; i < ASR_N_FFT; i++)
                frame[i] = job->samples[first + i] * job->window[i];
        } else {
            for (int i = 0; i < ASR_N_FFT; i++)
                frame[i] = padded_sample(job, start + i) * job->window[i];
        }
        real_power_spectrum(job->plan, frame, power);
        for (int m = 0; m < job->n_mels; m++) {
            const float *f = job->filters + (size_t)m * ASR_N_FREQ;
            double acc = 0.0;
            for (int k = job->band_lo[m]; k < job->band_hi[m]; k++)
                acc += f[k] * power[k];
            const float v = (float)log10(acc > 1e-10 ? acc : 1e-10);
            job->out[(size_t)m * job->n_frames + t] = v;
            if (v > max_log)
                max_log = v;
        }
    }
    job->max_log = max_log;
    return NULL;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

asr_status asr_log_mel(const float *samples, size_t n_samples, size_t pad_samples, int n_mels,
                       int n_threads, float **out, int *n_frames, asr_error *err)
{
    if (!out || !n_frames || (n_samples && !samples))
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "log-mel: NULL argument");
    *out = NULL;
    *n_frames = 0;
    if (n_mels < 1 || n_mels > MEL_MAX_BANDS)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "log-mel: n_mels %d out of range", n_mels);
    if (n_samples > SIZE_MAX / 2 || pad_samples > SIZE_MAX / 2)
        return asr_fail(err, ASR_ERR_TOO_LARGE, "log-mel: input too long");
    const size_t n_total = n_samples + pad_samples;
    const size_t frames = n_total / ASR_HOP_LENGTH;
    if (frames == 0)
        return asr_fail(err, ASR_ERR_AUDIO, "log-mel: %zu samples make no frame (need %d)",
                        n_total, ASR_HOP_LENGTH);
    if (frames > INT32_MAX || frames > SIZE_MAX / sizeof(float) / (size_t)n_mels)
        return asr_fail(err, ASR_ERR_TOO_LARGE, "log-mel: %zu frames is too many", frames);

    float *spec = malloc(sizeof(float) * (size_t)n_mels * frames);   /* (n_mels, frames) */
    float *filters = malloc(sizeof(float) * (size_t)n_mels * ASR_N_FREQ);
    int *band = malloc(sizeof(int) * 2 * (size_t)n_mels);
    fft_plan *plan = malloc(sizeof *plan);
    if (!spec || !filters || !band || !plan) {
        free(spec), free(filters), free(band), free(plan);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "log-mel: out of memory");
    }
    asr_status st = asr_mel_filters(n_mels, filters, err);
    if (st != ASR_OK) {
        free(spec), free(filters), free(band), free(plan);
        return st;
    }
    /* Each triangular filter covers a few bins; skipping the zeros makes the
     * mel projection ~10x cheaper than the dense (n_mels, 201) product. */
    int *band_lo = band, *band_hi = band + n_mels;
    for (int m = 0; m < n_mels; m++) {
        const float *f = filters + (size_t)m * ASR_N_FREQ;
        int lo = 0, hi = ASR_N_FREQ;
        while (lo < hi && f[lo] == 0.0f)
            lo++;
        while (hi > lo && f[hi - 1] == 0.0f)
            hi--;
        band_lo[m] = lo;
        band_hi[m] = hi;
    }
    fft_plan_init(plan, ASR_N_FFT / 2);
    double window[ASR_N_FFT]; /* torch.hann_window(400), periodic */
    for (int i = 0; i < ASR_N_FFT; i++)
        window[i] = 0.5 - 0.5 * cos(2.0 * M_PI * i / ASR_N_FFT);

    if (n_threads <= 0)
        n_threads = online_cpus();
    const int min_frames_per_thread = 64;
    int max_useful = (int)((frames + min_frames_per_thread - 1) / min_frames_per_thread);
    if (n_threads > max_useful)
        n_threads = max_useful;
    if (n_threads > 64)
        n_threads = 64;
    if (n_threads < 1)
        n_threads = 1;

    mel_job jobs[64];
    pthread_t tids[64];
    int started[64] = {0};
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (mel_job){
            .samples = samples,
            .n_samples = n_samples,
            .n_total = n_total,
            .plan = plan,
            .window = window,
            .filters = filters,
            .band_lo = band_lo,
            .band_hi = band_hi,
            .n_mels = n_mels,
            .n_frames = (int)frames,
            .out = spec,
            .frame_begin = (int)(frames * (size_t)i / (size_t)n_threads),
            .frame_end = (int)(frames * (size_t)(i + 1) / (size_t)n_threads),
        };
    }
    /* Thread 0's share runs on the calling thread; if a thread cannot be
     * created its share also runs here, so the result never depends on it. */
    for (int i = 1; i < n_threads; i++)
        started[i] = pthread_create(&tids[i], NULL, mel_worker, &jobs[i]) == 0;
    mel_worker(&jobs[0]);
    for (int i = 1; i < n_threads; i++) {
        if (started[i])
            pthread_join(tids[i], NULL);
        else
            mel_worker(&jobs[i]);
    }
    float max_log = -FLT_MAX;
    for (int i = 0; i < n_threads; i++)
        if (jobs[i].max_log > max_log)
            max_log = jobs[i].max_log;

    /* log_spec = maximum(log_spec, max - 8); (log_spec + 4) / 4, in float32 as torch. */
    const float floor_log = max_log - 8.0f;
    const size_t n = (size_t)n_mels * frames;
    for (size_t i = 0; i < n; i++) {
        float v = spec[i] > floor_log ? spec[i] : floor_log;
        spec[i] = (v + 4.0f) / 4.0f;
    }
    free(filters);
    free(band);
    free(plan);
    *out = spec;
    *n_frames = (int)frames;
    return ASR_OK;
}
