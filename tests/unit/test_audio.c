/* test_audio.c — decoding real files in every supported format, and hostile inputs.
 * M4A/AAC, WebM/Opus and Ogg/Vorbis fixtures are encoded here with libavformat
 * from jfk.wav (no ffmpeg CLI needed), into a temporary directory. */
#include "check.h"
#include "internal.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp_dir[256];
static const char *shared;

static const char *data_path(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/testdata/%s", shared, name);
    return buf;
}

static const char *tmp_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmp_dir, name);
    return buf;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best normalised cross-correlation of a and b over lags in [lag_lo, lag_hi]
 * (b[i + lag] against a[i]); *lag_out gets the lag. */
static double best_correlation(const float *a, size_t na, const float *b, size_t nb, int lag_lo,
                               int lag_hi, int *lag_out)
{
    double best = -2;
    for (int lag = lag_lo; lag <= lag_hi; lag++) {
        double ab = 0, aa = 0, bb = 0;
        size_t n = na < nb ? na : nb;
        for (size_t i = (size_t)(lag < 0 ? -lag : 0); i < n; i++) {
            size_t j = i + (size_t)lag; /* index into b */
            if (j >= nb)
                break;
            ab += (double)a[i] * b[j];
            aa += (double)a[i] * a[i];
            bb += (double)b[j] * b[j];
        }
        double c = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
        if (c > best) {
            best = c;
            *lag_out = lag;
        }
    }
    return best;
}

static double rms(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return n ? sqrt(s / n) : 0;
}

/* Offset and size of the "data" chunk of a RIFF/WAVE image. */
static int wav_data_chunk(const unsigned char *w, size_t len, size_t *off, size_t *size)
{
    if (len < 12 || memcmp(w, "RIFF", 4) || memcmp(w + 8, "WAVE", 4))
        return -1;
    size_t p = 12;
    while (p + 8 <= len) {
        size_t sz = (size_t)w[p + 4] | (size_t)w[p + 5] << 8 | (size_t)w[p + 6] << 16 |
                    (size_t)w[p + 7] << 24;
        if (!memcmp(w + p, "data", 4)) {
            *off = p + 8;
            *size = sz;
            return 0;
        }
        p += 8 + sz + (sz & 1);
    }
    return -1;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8), p[2] = (unsigned char)(v >> 16),
    p[3] = (unsigned char)(v >> 24);
}

/* ---- fixture encoding with libavformat --------------------------------------- */

/* Encode mono 16 kHz float samples with `encoder` into container `muxer` at path. */
static int encode_fixture(const char *path, const char *muxer, const char *encoder_name,
                          const float *x, size_t n)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(encoder_name);
    if (!codec)
        return -1;
    AVFormatContext *oc = NULL;
    AVCodecContext *enc = NULL;
    AVFrame *frame = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    int rc = -1;
    if (avformat_alloc_output_context2(&oc, NULL, muxer, path) < 0 || !frame || !pkt)
        goto done;
    AVStream *st = avformat_new_stream(oc, NULL);
    enc = avcodec_alloc_context3(codec);
    if (!st || !enc)
        goto done;
    enum AVSampleFormat sf = AV_SAMPLE_FMT_NONE; /* mono: FLT and FLTP share a layout */
    for (const enum AVSampleFormat *f = codec->sample_fmts; f && *f != AV_SAMPLE_FMT_NONE; f++)
        if (*f == AV_SAMPLE_FMT_FLT || *f == AV_SAMPLE_FMT_FLTP) {
            sf = *f;
            break;
        }
    if (sf == AV_SAMPLE_FMT_NONE)
        goto done;
    enc->sample_fmt = sf;
    enc->sample_rate = ASR_SAMPLE_RATE;
    enc->bit_rate = 64000;
    enc->time_base = (AVRational){1, ASR_SAMPLE_RATE};
    av_channel_layout_default(&enc->ch_layout, 1);
    if (oc->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (avcodec_open2(enc, codec, NULL) < 0 || avcodec_parameters_from_context(st->codecpar, enc) < 0)
        goto done;
    st->time_base = enc->time_base;
    if (avio_open(&oc->pb, path, AVIO_FLAG_WRITE) < 0)
        goto done;
    if (avformat_write_header(oc, NULL) < 0)
        goto done;
    int frame_size = enc->frame_size > 0 ? enc->frame_size : 1024;
    for (size_t pos = 0;; pos += (size_t)frame_size) {
        int last = pos >= n;
        if (!last) {
            frame->nb_samples = frame_size;
            frame->format = sf;
            frame->sample_rate = ASR_SAMPLE_RATE;
            av_channel_layout_default(&frame->ch_layout, 1);
            if (av_frame_get_buffer(frame, 0) < 0)
                goto done;
            float *dst = (float *)frame->data[0];
            for (int i = 0; i < frame_size; i++)
                dst[i] = pos + (size_t)i < n ? x[pos + (size_t)i] : 0.0f;
            frame->pts = (int64_t)pos;
        }
        if (avcodec_send_frame(enc, last ? NULL : frame) < 0)
            goto done;
        av_frame_unref(frame);
        while (avcodec_receive_packet(enc, pkt) == 0) {
            av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
            pkt->stream_index = st->index;
            if (av_interleaved_write_frame(oc, pkt) < 0)
                goto done;
        }
        if (last)
            break;
    }
    rc = av_write_trailer(oc) < 0 ? -1 : 0;
done:
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    if (oc) {
        avio_closep(&oc->pb);
        avformat_free_context(oc);
    }
    return rc;
}

/* A Matroska file holding one subtitle track and no audio. */
static int write_subtitle_only_mkv(const char *path)
{
    AVFormatContext *oc = NULL;
    AVPacket *pkt = av_packet_alloc();
    int rc = -1;
    if (!pkt || avformat_alloc_output_context2(&oc, NULL, "matroska", path) < 0)
        goto done;
    AVStream *st = avformat_new_stream(oc, NULL);
    if (!st)
        goto done;
    st->codecpar->codec_type = AVMEDIA_TYPE_SUBTITLE;
    st->codecpar->codec_id = AV_CODEC_ID_SUBRIP;
    st->time_base = (AVRational){1, 1000};
    if (avio_open(&oc->pb, path, AVIO_FLAG_WRITE) < 0 || avformat_write_header(oc, NULL) < 0)
        goto done;
    static const char text[] = "hello";
    if (av_new_packet(pkt, (int)strlen(text)) < 0)
        goto done;
    memcpy(pkt->data, text, strlen(text));
    pkt->pts = pkt->dts = 0;
    pkt->duration = 1000;
    pkt->stream_index = 0;
    if (av_interleaved_write_frame(oc, pkt) < 0)
        goto done;
    rc = av_write_trailer(oc) < 0 ? -1 : 0;
done:
    av_packet_free(&pkt);
    if (oc) {
        avio_closep(&oc->pb);
        avformat_free_context(oc);
    }
    return rc;
}

/* ---- checks ------------------------------------------------------------------------- */

static asr_audio jfk; /* jfk.wav, the reference decode */

static void check_wav(void)
{
    asr_error err;
    asr_status st = asr_audio_decode_file(data_path("jfk.wav"), NULL, &jfk, &err);
    CHECK(st == ASR_OK, "decode jfk.wav: %s", err.message);
    CHECK(jfk.n_samples == 176000, "jfk.wav: %zu samples == 176000", jfk.n_samples);
    /* 16-bit 16 kHz mono must come out exactly as sample / 32768. */
    size_t len = 0, off = 0, size = 0;
    unsigned char *w = read_file(data_path("jfk.wav"), &len);
    int ok = w && wav_data_chunk(w, len, &off, &size) == 0 && size / 2 == jfk.n_samples;
    for (size_t i = 0; ok && i < jfk.n_samples; i++) {
        int16_t v = (int16_t)(uint16_t)(w[off + 2 * i] | w[off + 2 * i + 1] << 8);
        ok = jfk.samples[i] == v / 32768.0f;
    }
    CHECK(ok, "jfk.wav samples equal the PCM data / 32768");
    /* The same bytes from memory decode identically. */
    asr_audio mem = {0};
    st = asr_audio_decode_memory(w, len, NULL, &mem, &err);
    CHECK(st == ASR_OK && mem.n_samples == jfk.n_samples &&
              memcmp(mem.samples, jfk.samples, jfk.n_samples * sizeof(float)) == 0,
          "decode_memory(jfk.wav) == decode_file: %s", err.message);
    asr_audio_free(&mem);
    CHECK(mem.samples == NULL && mem.n_samples == 0, "asr_audio_free clears the struct");
    asr_audio_free(&mem); /* twice is harmless */
    asr_audio_free(NULL);
    free(w);
}

/* Decode `path` and compare it with jfk.wav: length within 1%, correlation >
 * min_corr at a lag (decoder delay, in samples) within [lag_lo, lag_hi]. */
static void check_like_jfk(const char *path, const char *what, double min_corr, int lag_lo,
                           int lag_hi)
{
    asr_audio a = {0};
    asr_error err;
    double t0 = seconds_now();
    asr_status st = asr_audio_decode_file(path, NULL, &a, &err);
    double dt = seconds_now() - t0;
    CHECK(st == ASR_OK, "decode %s: %s", what, err.message);
    if (st != ASR_OK || !jfk.samples)
        return;
    double ratio = (double)a.n_samples / jfk.n_samples;
    CHECK(fabs(ratio - 1) <= 0.01, "%s: %zu samples within 1%% of %zu", what, a.n_samples,
          jfk.n_samples);
    int lag = 0;
    double c = best_correlation(jfk.samples, jfk.n_samples, a.samples, a.n_samples, lag_lo, lag_hi, &lag);
    CHECK(c > min_corr, "%s: correlation with jfk.wav %.4f > %.2f (lag %d, %.3f s)", what, c,
          min_corr, lag, dt);
    float peak = 0;
    for (size_t i = 0; i < a.n_samples; i++)
        peak = fmaxf(peak, fabsf(a.samples[i]));
    CHECK(peak > 0.1f && peak <= 1.5f, "%s: peak %.3f is plausible", what, peak);
    asr_audio_free(&a);
}

static void check_formats(void)
{
    check_like_jfk(data_path("jfk.mp3"), "jfk.mp3", 0.99, -48, 48);
    /* 44.1 kHz stereo 24-bit: exercises resampling and the downmix. */
    check_like_jfk(data_path("jfk.flac"), "jfk.flac", 0.99, -48, 48);
    if (!jfk.samples)
        return;
    struct {
        const char *file, *muxer, *encoder;
        int lag_lo, lag_hi;
    } fixtures[] = {
        {"jfk.m4a", "ipod", "aac", -48, 48}, /* MP4 edit list trims the AAC priming */
        /* ADTS has nowhere to say so: the encoder's 1024 priming samples stay. */
        {"jfk.aac", "adts", "aac", 1024 - 48, 1024 + 48},
        {"jfk.webm", "webm", "libopus", -48, 48},
        {"jfk_vorbis.ogg", "ogg", "libvorbis", -48, 48},
        {"jfk_opus.mka", "matroska", "libopus", -48, 48},
    };
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        const char *path = tmp_path(fixtures[i].file);
        int rc = encode_fixture(path, fixtures[i].muxer, fixtures[i].encoder, jfk.samples,
                                jfk.n_samples);
        CHECK(rc == 0, "encode fixture %s (%s/%s)", fixtures[i].file, fixtures[i].muxer,
              fixtures[i].encoder);
        if (rc == 0)
            check_like_jfk(path, fixtures[i].file, 0.95, fixtures[i].lag_lo, fixtures[i].lag_hi);
        /* Memory decode gives the same samples as the file decode. */
        size_t len = 0;
        unsigned char *bytes = read_file(path, &len);
        asr_audio a = {0}, b = {0};
        asr_error err;
        asr_status s1 = asr_audio_decode_file(path, NULL, &a, &err);
        asr_status s2 = asr_audio_decode_memory(bytes, len, NULL, &b, &err);
        CHECK(s1 == ASR_OK && s2 == ASR_OK && a.n_samples == b.n_samples &&
                  memcmp(a.samples, b.samples, a.n_samples * sizeof(float)) == 0,
              "%s: decode_memory == decode_file (%s)", fixtures[i].file, err.message);
        asr_audio_free(&a);
        asr_audio_free(&b);
        free(bytes);
    }
}

static void check_opus_and_longform(void)
{
    asr_audio a = {0};
    asr_error err;
    asr_status st = asr_audio_decode_file(data_path("fleurs/en-000.ogg"), NULL, &a, &err);
    double secs = (double)a.n_samples / ASR_SAMPLE_RATE;
    CHECK(st == ASR_OK && secs > 5 && secs < 20, "fleurs/en-000.ogg (Opus): %.2f s: %s", secs,
          err.message);
    CHECK(rms(a.samples, a.n_samples) > 0.001, "fleurs/en-000.ogg has signal (rms %.4f)",
          rms(a.samples, a.n_samples));
    asr_audio_free(&a);

    double t0 = seconds_now();
    st = asr_audio_decode_file(data_path("longform/en-brian.ogg"), NULL, &a, &err);
    double dt = seconds_now() - t0;
    secs = (double)a.n_samples / ASR_SAMPLE_RATE;
    CHECK(st == ASR_OK && fabs(secs - 304.7) < 0.5, "longform/en-brian.ogg: %.2f s (304.7), decoded in %.3f s",
          secs, dt);
    asr_audio_free(&a);

    /* Stereo: the downmix is the average of the channels, as ffmpeg -ac 1. */
    size_t len = 0, off = 0, size = 0;
    unsigned char *w = read_file(data_path("stereo_diarization.wav"), &len);
    st = asr_audio_decode_file(data_path("stereo_diarization.wav"), NULL, &a, &err);
    int ok = st == ASR_OK && w && wav_data_chunk(w, len, &off, &size) == 0 &&
             a.n_samples == size / 4;
    double max_diff = 0;
    for (size_t i = 0; ok && i < a.n_samples; i++) {
        const unsigned char *p = w + off + 4 * i;
        int16_t l = (int16_t)(uint16_t)(p[0] | p[1] << 8), r = (int16_t)(uint16_t)(p[2] | p[3] << 8);
        max_diff = fmax(max_diff, fabs(a.samples[i] - (l + r) / 65536.0));
    }
    CHECK(ok && max_diff <= 1.0 / 32768, "stereo WAV downmix = (L+R)/2 (max diff %.3g, %zu samples)",
          max_diff, a.n_samples);
    asr_audio_free(&a);
    free(w);
}

/* 16 kHz mono IEEE-float WAV holding hostile values: NaN, infinities, 1e30. */
static void check_float_wav(void)
{
    const uint32_t n = 16000;
    unsigned char *w = calloc(1, 44 + 4 * (size_t)n);
    memcpy(w, "RIFF", 4);
    put32(w + 4, 36 + 4 * n);
    memcpy(w + 8, "WAVEfmt ", 8);
    put32(w + 16, 16);
    w[20] = 3;  /* WAVE_FORMAT_IEEE_FLOAT */
    w[22] = 1;  /* mono */
    put32(w + 24, ASR_SAMPLE_RATE);
    put32(w + 28, ASR_SAMPLE_RATE * 4);
    w[32] = 4;  /* block align */
    w[34] = 32; /* bits */
    memcpy(w + 36, "data", 4);
    put32(w + 40, 4 * n);
    for (uint32_t i = 0; i < n; i++) {
        float v = (float)(0.5 * sin(2 * M_PI * 440 * i / ASR_SAMPLE_RATE));
        if (i % 1000 == 1) v = NAN;
        if (i % 1000 == 2) v = INFINITY;
        if (i % 1000 == 3) v = -INFINITY;
        if (i % 1000 == 4) v = 1e30f;
        uint32_t u;
        memcpy(&u, &v, 4);
        put32(w + 44 + 4 * (size_t)i, u);
    }
    asr_audio a = {0};
    asr_error err;
    asr_status st = asr_audio_decode_memory(w, 44 + 4 * (size_t)n, NULL, &a, &err);
    int ok = st == ASR_OK && a.n_samples == n;
    for (size_t i = 0; ok && i < a.n_samples; i++)
        ok = isfinite(a.samples[i]) && fabsf(a.samples[i]) <= 1.0f;
    CHECK(ok, "float WAV with NaN/Inf/1e30: %zu samples, all finite in [-1, 1] (%s)", a.n_samples,
          err.message);
    /* Ordinary samples come through as whisper's loader gives them: rounded to s16. */
    float want = (float)lrintf((float)(0.5 * sin(2 * M_PI * 440 * 123 / ASR_SAMPLE_RATE)) * 32768.0f) / 32768.0f;
    CHECK(st == ASR_OK && a.n_samples == n && a.samples[123] == want,
          "ordinary samples are rounded to the s16 grid (%.6f == %.6f)", st == ASR_OK ? a.samples[123] : 0, want);
    asr_audio_free(&a);
    free(w);
}

/* Two MP3s back to back (16 kHz then 24 kHz): the resampler is rebuilt when
 * the rate changes mid-stream, and nothing is lost at the seam. */
static void check_rate_change(void)
{
    size_t l1 = 0, l2 = 0;
    unsigned char *a1 = read_file(data_path("jfk.mp3"), &l1);
    unsigned char *a2 = read_file(data_path("multilingual.mp3"), &l2);
    asr_audio x = {0}, y = {0}, both = {0};
    asr_error err;
    int ok = a1 && a2 && asr_audio_decode_memory(a1, l1, NULL, &x, &err) == ASR_OK &&
             asr_audio_decode_memory(a2, l2, NULL, &y, &err) == ASR_OK;
    CHECK(ok, "decode jfk.mp3 and multilingual.mp3 alone");
    unsigned char *cat = malloc(l1 + l2);
    if (ok && cat) {
        memcpy(cat, a1, l1);
        memcpy(cat + l1, a2, l2);
        asr_status st = asr_audio_decode_memory(cat, l1 + l2, NULL, &both, &err);
        double want = (double)(x.n_samples + y.n_samples) / ASR_SAMPLE_RATE;
        double got = (double)both.n_samples / ASR_SAMPLE_RATE;
        CHECK(st == ASR_OK && fabs(got - want) < 0.2, "16 kHz + 24 kHz MP3 concatenated: %.2f s (separately %.2f s)",
              got, want);
        int lag = 0;
        double c = st == ASR_OK ? best_correlation(x.samples, x.n_samples, both.samples, both.n_samples, 0, 0, &lag) : 0;
        CHECK(c > 0.99, "its first part is jfk (correlation %.4f)", c);
    }
    asr_audio_free(&x);
    asr_audio_free(&y);
    asr_audio_free(&both);
    free(cat);
    free(a1);
    free(a2);
}

/* Decodes share no state: four threads at once give the single-thread result. */
typedef struct decode_job {
    const unsigned char *bytes;
    size_t len;
    asr_audio out;
    asr_status status;
} decode_job;

static void *decode_job_run(void *arg)
{
    decode_job *job = arg;
    asr_error err;
    job->status = asr_audio_decode_memory(job->bytes, job->len, NULL, &job->out, &err);
    return NULL;
}

static void check_concurrent(void)
{
    size_t len = 0;
    unsigned char *flac = read_file(data_path("jfk.flac"), &len);
    asr_audio one = {0};
    asr_error err;
    asr_status st = flac ? asr_audio_decode_memory(flac, len, NULL, &one, &err) : ASR_ERR_IO;
    decode_job jobs[4];
    pthread_t tids[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (decode_job){.bytes = flac, .len = len, .status = ASR_ERR_INTERNAL};
        pthread_create(&tids[i], NULL, decode_job_run, &jobs[i]);
    }
    int same = st == ASR_OK;
    for (int i = 0; i < 4; i++) {
        pthread_join(tids[i], NULL);
        same = same && jobs[i].status == ASR_OK && jobs[i].out.n_samples == one.n_samples &&
               memcmp(jobs[i].out.samples, one.samples, one.n_samples * sizeof(float)) == 0;
        asr_audio_free(&jobs[i].out);
    }
    CHECK(same, "4 concurrent FLAC decodes equal the single decode");
    asr_audio_free(&one);
    free(flac);
}

/* Mutated real files (flipped bytes, cut at random points): whatever comes
 * back must be a clean status, with samples only on success. Run under
 * ASan/UBSan this is a small deterministic fuzz of each demuxer and decoder. */
static void check_mutations(void)
{
    const char *files[] = {data_path("jfk.wav"), data_path("jfk.mp3"), data_path("jfk.flac"),
                           data_path("fleurs/de-000.ogg"), tmp_path("jfk.m4a"),
                           tmp_path("jfk.webm"), tmp_path("jfk_vorbis.ogg"), tmp_path("jfk.aac")};
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    int clean = 1, decoded = 0, refused = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s", files[f]);
        size_t len = 0;
        unsigned char *orig = read_file(path, &len);
        if (!orig || len < 64) {
            CHECK(0, "read %s for mutation", path);
            free(orig);
            continue;
        }
        unsigned char *buf = malloc(len);
        for (int round = 0; round < 12; round++) {
            memcpy(buf, orig, len);
            size_t n = len;
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            if (round % 3 == 2) {
                n = (size_t)(rng >> 33) % len; /* cut */
            } else {
                /* Flip bytes, half of the rounds inside the first 4 KB (headers). */
                int flips = 1 + (int)((rng >> 40) % 64);
                for (int i = 0; i < flips; i++) {
                    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                    size_t span = round % 2 ? len : (len < 4096 ? len : 4096);
                    buf[(rng >> 20) % span] ^= (unsigned char)(1u + (rng >> 56) % 255);
                }
            }
            asr_audio a = {0};
            asr_error err;
            asr_audio_limits lim = asr_audio_default_limits();
            lim.max_duration_s = 600;
            asr_status st = asr_audio_decode_memory(buf, n, &lim, &a, &err);
            int ok = (st == ASR_OK && a.samples && a.n_samples > 0) ||
                     ((st == ASR_ERR_AUDIO || st == ASR_ERR_TOO_LARGE) && !a.samples && err.message[0]);
            if (!ok) {
                clean = 0;
                printf("     %s round %d: status %d, %zu samples: %s\n", path, round, st, a.n_samples,
                       err.message);
            }
            decoded += st == ASR_OK;
            refused += st != ASR_OK;
            asr_audio_free(&a);
        }
        free(buf);
        free(orig);
    }
    CHECK(clean, "96 mutated files: clean statuses only (%d decoded, %d refused)", decoded, refused);
}

/* A FIFO (as `asr transcribe /dev/stdin` gets): no seeking, no size. */
typedef struct fifo_writer {
    const char *path;
    const unsigned char *bytes;
    size_t len;
} fifo_writer;

static void *fifo_write(void *arg)
{
    fifo_writer *w = arg;
    FILE *f = fopen(w->path, "wb");
    if (f) {
        fwrite(w->bytes, 1, w->len, f);
        fclose(f);
    }
    return NULL;
}

static void check_fifo(void)
{
    const char *names[] = {"jfk.mp3", "jfk.flac", "fleurs/en-000.ogg"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t len = 0;
        unsigned char *bytes = read_file(data_path(names[i]), &len);
        asr_audio want = {0}, got = {0};
        asr_error err;
        asr_status st = bytes ? asr_audio_decode_memory(bytes, len, NULL, &want, &err) : ASR_ERR_IO;
        const char *fifo = tmp_path("audio.fifo");
        unlink(fifo);
        if (st != ASR_OK || mkfifo(fifo, 0600) != 0) {
            CHECK(0, "set up a FIFO for %s", names[i]);
            free(bytes);
            asr_audio_free(&want);
            continue;
        }
        fifo_writer w = {.path = fifo, .bytes = bytes, .len = len};
        pthread_t tid;
        pthread_create(&tid, NULL, fifo_write, &w);
        st = asr_audio_decode_file(fifo, NULL, &got, &err);
        pthread_join(tid, NULL);
        /* Unseekable MP3 keeps the encoder's end padding (the gapless info
         * needs a seek; `ffmpeg -i pipe:` gives the same 303 extra samples). */
        size_t extra = strstr(names[i], ".mp3") ? 1152 : 0;
        CHECK(st == ASR_OK && got.n_samples >= want.n_samples &&
                  got.n_samples <= want.n_samples + extra &&
                  memcmp(got.samples, want.samples, want.n_samples * sizeof(float)) == 0,
              "%s through a FIFO == from memory (%zu samples, %zu from memory): %s", names[i],
              got.n_samples, want.n_samples, err.message);
        asr_audio_free(&got);
        asr_audio_free(&want);
        unlink(fifo);
        free(bytes);
    }
}

static void check_raw(void)
{
    const char *path = "/usr/share/pocketsphinx/test/data/goforward.raw";
    size_t len = 0;
    unsigned char *bytes = read_file(path, &len);
    CHECK(bytes != NULL && len > 1000, "read %s (pocketsphinx-testdata)", path);
    if (!bytes)
        return;
    asr_audio a = {0}, b = {0};
    asr_error err;
    asr_status st = asr_audio_decode_file(path, NULL, &a, &err);
    CHECK(st == ASR_OK && a.n_samples == len / 2, "goforward.raw by extension: %zu samples == %zu: %s",
          a.n_samples, len / 2, err.message);
    int ok = st == ASR_OK;
    for (size_t i = 0; ok && i < a.n_samples; i++)
        ok = a.samples[i] == (int16_t)(uint16_t)(bytes[2 * i] | bytes[2 * i + 1] << 8) / 32768.0f;
    CHECK(ok, "goforward.raw samples are s16le / 32768");
    asr_audio_limits lim = asr_audio_default_limits();
    lim.raw_pcm_s16le = 1;
    st = asr_audio_decode_memory(bytes, len, &lim, &b, &err);
    CHECK(st == ASR_OK && b.n_samples == a.n_samples &&
              memcmp(a.samples, b.samples, a.n_samples * sizeof(float)) == 0,
          "raw from memory with raw_pcm_s16le == file decode");
    asr_audio_free(&b);
    /* Under another name, the flag says raw; an odd trailing byte is dropped. */
    write_file(tmp_path("goforward.bin"), bytes, len - 1);
    st = asr_audio_decode_file(tmp_path("goforward.bin"), &lim, &b, &err);
    CHECK(st == ASR_OK && b.n_samples == len / 2 - 1, "raw flag on a .bin file, odd length: %zu samples",
          b.n_samples);
    asr_audio_free(&b);
    /* Without the flag, headerless PCM is not a recognised format. */
    st = asr_audio_decode_file(tmp_path("goforward.bin"), NULL, &b, &err);
    CHECK(st == ASR_ERR_AUDIO, "raw PCM without the flag: %s", err.message);
    lim.max_duration_s = 1.0;
    st = asr_audio_decode_file(path, &lim, &b, &err);
    CHECK(st == ASR_ERR_TOO_LARGE && b.samples == NULL, "raw over max_duration_s: %s", err.message);
    write_file(tmp_path("empty.raw"), "", 0);
    st = asr_audio_decode_file(tmp_path("empty.raw"), NULL, &b, &err);
    CHECK(st == ASR_ERR_AUDIO, "empty .raw: %s", err.message);
    asr_audio_free(&a);
    free(bytes);
}

/* Decode bytes both as a file and from memory; both must give `want`. */
static void check_bad(const char *name, const void *data, size_t len, asr_status want)
{
    asr_audio a = {0};
    asr_error err;
    const char *path = tmp_path(name);
    write_file(path, data, len);
    asr_status st = asr_audio_decode_file(path, NULL, &a, &err);
    CHECK(st == want && a.samples == NULL && a.n_samples == 0 && err.code == want && err.message[0],
          "file %s → %s: %s", name, asr_strerror(st), err.message);
    asr_audio_free(&a);
    st = asr_audio_decode_memory(data, len, NULL, &a, &err);
    CHECK(st == want && a.samples == NULL && err.message[0], "memory %s → %s: %s", name,
          asr_strerror(st), err.message);
    asr_audio_free(&a);
}

/* Like check_bad with ASR_ERR_AUDIO, and the message must be exactly `want`
 * (from a file: prefixed with the file's path). */
static void check_refused(const char *name, const void *data, size_t len, const char *want)
{
    asr_audio a = {0};
    asr_error err;
    const char *path = tmp_path(name);
    write_file(path, data, len);
    char want_file[8192];
    snprintf(want_file, sizeof want_file, "%s: %s", path, want);
    asr_status st = asr_audio_decode_file(path, NULL, &a, &err);
    CHECK(st == ASR_ERR_AUDIO && a.samples == NULL && strcmp(err.message, want_file) == 0,
          "file %s refused as \"%s\": %s: %s", name, want, asr_strerror(st), err.message);
    asr_audio_free(&a);
    st = asr_audio_decode_memory(data, len, NULL, &a, &err);
    CHECK(st == ASR_ERR_AUDIO && a.samples == NULL && strcmp(err.message, want) == 0,
          "memory %s refused as \"%s\": %s: %s", name, want, asr_strerror(st), err.message);
    asr_audio_free(&a);
}

static void check_errors(void)
{
    asr_audio a = {0};
    asr_error err;
    asr_status st = asr_audio_decode_file(tmp_path("does-not-exist.wav"), NULL, &a, &err);
    CHECK(st == ASR_ERR_IO, "missing file: %s", err.message);
    st = asr_audio_decode_file(tmp_dir, NULL, &a, &err);
    CHECK(st == ASR_ERR_IO, "a directory: %s", err.message);
    st = asr_audio_decode_memory(NULL, 10, NULL, &a, &err);
    CHECK(st == ASR_ERR_INVALID_ARGUMENT, "NULL data: %s", err.message);

    check_bad("empty.wav", "", 0, ASR_ERR_AUDIO);
    unsigned char *noise = malloc(65536);
    uint64_t s = 42;
    for (size_t i = 0; i < 65536; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        noise[i] = (unsigned char)(s >> 56);
    }
    check_bad("noise.bin", noise, 65536, ASR_ERR_AUDIO);
    check_bad("noise.mp3", noise, 65536, ASR_ERR_AUDIO);
    free(noise);
    char text[4000] = "";
    for (int i = 0; i < 60; i++)
        strcat(text, "This is a plain text file, not audio at all.\n");
    check_bad("text.txt", text, strlen(text), ASR_ERR_AUDIO);
    /* Demuxers that open other URLs or files must be refused outright, by
     * name, before they open anything: each list names a real local WAV
     * (jfk.wav by absolute path, and a copy beside the list by relative name)
     * that an unrestricted FFmpeg would happily decode as the list's audio. */
    char wav_abs[4096];
    const char *jfk_path = data_path("jfk.wav");
    CHECK(realpath(jfk_path, wav_abs) != NULL, "realpath(%s)", jfk_path);
    size_t jfk_len = 0;
    unsigned char *jfk_bytes = read_file(jfk_path, &jfk_len);
    write_file(tmp_path("seg.wav"), jfk_bytes, jfk_len);
    free(jfk_bytes);
    char hls[8192], concat[8192];
    snprintf(hls, sizeof hls,
             "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:11\n#EXTINF:11.0,\nfile://%s\n"
             "#EXTINF:11.0,\nseg.wav\n#EXT-X-ENDLIST\n",
             wav_abs);
    snprintf(concat, sizeof concat, "ffconcat version 1.0\nfile '%s'\nfile 'seg.wav'\n", wav_abs);
    check_refused("playlist.m3u8", hls, strlen(hls), "audio: unsupported format 'hls'");
    check_refused("list.ffconcat", concat, strlen(concat), "audio: unsupported format 'concat'");
    /* A container with no audio stream. */
    /* An audio codec outside the allow-list (WMA in Matroska). */
    if (jfk.samples) {
        int rc = encode_fixture(tmp_path("wma.mka"), "matroska", "wmav2", jfk.samples, 16000);
        CHECK(rc == 0, "encode a WMA-in-Matroska fixture");
        st = asr_audio_decode_file(tmp_path("wma.mka"), NULL, &a, &err);
        CHECK(st == ASR_ERR_AUDIO && strstr(err.message, "unsupported audio codec 'wmav2'"),
              "WMA refused: %s", err.message);
        asr_audio_free(&a);
    }
    int subs_rc = write_subtitle_only_mkv(tmp_path("subs.mkv"));
    CHECK(subs_rc == 0, "write a subtitle-only Matroska fixture");
    if (subs_rc == 0) {
        size_t len = 0;
        unsigned char *b = read_file(tmp_path("subs.mkv"), &len);
        check_bad("subs.mkv", b, len, ASR_ERR_AUDIO);
        st = asr_audio_decode_memory(b, len, NULL, &a, &err);
        CHECK(strstr(err.message, "no audio stream") != NULL, "subtitle-only mkv: %s", err.message);
        free(b);
    }

    size_t len = 0, off = 0, size = 0;
    unsigned char *wav = read_file(data_path("jfk.wav"), &len);
    if (!wav || wav_data_chunk(wav, len, &off, &size) != 0 || !jfk.samples) {
        CHECK(0, "jfk.wav for the error cases");
        free(wav);
        return;
    }
    /* Header claims ~2 GB of data, 1 s follows: decode what is there. */
    unsigned char *lie = malloc(off + 32000);
    memcpy(lie, wav, off + 32000);
    put32(lie + 4, 0x7FFFFFF0u);
    put32(lie + off - 4, 0x7FFFFFE0u);
    write_file(tmp_path("lying.wav"), lie, off + 32000);
    st = asr_audio_decode_file(tmp_path("lying.wav"), NULL, &a, &err);
    CHECK(st == ASR_OK && a.n_samples == 16000 && memcmp(a.samples, jfk.samples, 16000 * sizeof(float)) == 0,
          "WAV claiming 2 GB with 1 s of data: %zu samples (%s)", a.n_samples, err.message);
    asr_audio_free(&a);
    st = asr_audio_decode_memory(lie, off + 32000, NULL, &a, &err);
    CHECK(st == ASR_OK && a.n_samples == 16000, "same from memory: %zu samples", a.n_samples);
    asr_audio_free(&a);
    /* Header only, no data. */
    check_bad("header-only.wav", lie, off, ASR_ERR_AUDIO);
    /* fmt chunk with 0 channels and a 0 Hz rate. */
    unsigned char *zero = malloc(off + 32000);
    memcpy(zero, lie, off + 32000);
    zero[22] = zero[23] = 0;
    put32(zero + 24, 0);
    check_bad("zero-channels.wav", zero, off + 32000, ASR_ERR_AUDIO);
    free(zero);
    free(lie);

    /* Truncated MP3: decode what is there (about 40% of 11 s). */
    size_t mp3_len = 0;
    unsigned char *mp3 = read_file(data_path("jfk.mp3"), &mp3_len);
    if (mp3) {
        size_t cut = mp3_len * 4 / 10;
        write_file(tmp_path("truncated.mp3"), mp3, cut);
        st = asr_audio_decode_file(tmp_path("truncated.mp3"), NULL, &a, &err);
        double secs = (double)a.n_samples / ASR_SAMPLE_RATE;
        CHECK(st == ASR_OK && secs > 3.5 && secs < 5.5, "mp3 cut to 40%%: %.2f s decoded (%s)", secs,
              err.message);
        asr_audio_free(&a);
        st = asr_audio_decode_memory(mp3, cut, NULL, &a, &err);
        CHECK(st == ASR_OK && fabs((double)a.n_samples / ASR_SAMPLE_RATE - secs) < 0.01,
              "same from memory");
        asr_audio_free(&a);
        /* Only the ID3 tag and a few bytes of the first frame. */
        size_t id3 = 10 + ((size_t)mp3[6] << 21 | (size_t)mp3[7] << 14 | (size_t)mp3[8] << 7 | mp3[9]);
        if (id3 + 40 < mp3_len)
            check_bad("tag-only.mp3", mp3, id3 + 40, ASR_ERR_AUDIO);
        /* Garbage in the middle of the stream: survives, keeps most audio. */
        unsigned char *damaged = malloc(mp3_len);
        memcpy(damaged, mp3, mp3_len);
        for (size_t i = mp3_len / 3; i < mp3_len / 3 + 4000; i++)
            damaged[i] = (unsigned char)(i * 7919u >> 3);
        st = asr_audio_decode_memory(damaged, mp3_len, NULL, &a, &err);
        CHECK(st == ASR_OK && a.n_samples > 150000, "mp3 with 4 KB of garbage inside: %zu samples (%s)",
              a.n_samples, err.message);
        asr_audio_free(&a);
        free(damaged);
        free(mp3);
    }

    /* Limits. */
    asr_audio_limits lim = asr_audio_default_limits();
    lim.max_duration_s = 5.0;
    st = asr_audio_decode_file(data_path("jfk.wav"), &lim, &a, &err);
    CHECK(st == ASR_ERR_TOO_LARGE && a.samples == NULL, "11 s WAV with max_duration_s 5: %s", err.message);
    st = asr_audio_decode_memory(wav, len, &lim, &a, &err);
    CHECK(st == ASR_ERR_TOO_LARGE, "same from memory: %s", err.message);
    st = asr_audio_decode_file(data_path("jfk.flac"), &lim, &a, &err);
    CHECK(st == ASR_ERR_TOO_LARGE, "11 s FLAC with max_duration_s 5: %s", err.message);
    lim.max_duration_s = 11.5;
    st = asr_audio_decode_file(data_path("jfk.wav"), &lim, &a, &err);
    CHECK(st == ASR_OK && a.n_samples == 176000, "11 s WAV with max_duration_s 11.5 decodes");
    asr_audio_free(&a);
    lim = asr_audio_default_limits();
    lim.deadline_s = 1e-9;
    st = asr_audio_decode_file(data_path("longform/en-brian.ogg"), &lim, &a, &err);
    CHECK(st == ASR_ERR_TIMEOUT && a.samples == NULL, "deadline 1 ns: %s", err.message);
    st = asr_audio_decode_memory(wav, len, &lim, &a, &err);
    CHECK(st == ASR_ERR_TIMEOUT, "deadline 1 ns from memory: %s", err.message);
    /* A deadline that passes mid-decode (the 5-minute file takes ~0.5 s). */
    lim.deadline_s = 0.02;
    double t0 = seconds_now();
    st = asr_audio_decode_file(data_path("longform/en-brian.ogg"), &lim, &a, &err);
    double dt = seconds_now() - t0;
    CHECK(st == ASR_ERR_TIMEOUT && a.samples == NULL && dt < 0.2,
          "deadline 20 ms on a 5-minute file stops it after %.3f s: %s", dt, err.message);
    lim.deadline_s = 60;
    st = asr_audio_decode_memory(wav, len, &lim, &a, &err);
    CHECK(st == ASR_OK, "deadline 60 s is met");
    asr_audio_free(&a);
    free(wav);
}

/* ---- hostile headers: amplification, channel counts, cancellation ------------------ */

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
}

/* A PCM WAV image: `rate` Hz, `channels` × `bits`, `n_data` bytes of a
 * tone after a data chunk that declares `declared` bytes. */
static unsigned char *make_wav(uint32_t rate, uint16_t channels, uint16_t bits, size_t n_data,
                               uint32_t declared, size_t *len)
{
    unsigned char *w = calloc(1, 44 + n_data);
    if (!w)
        return NULL;
    uint32_t block = (uint32_t)channels * bits / 8;
    memcpy(w, "RIFF", 4);
    put32(w + 4, declared > UINT32_MAX - 36 ? UINT32_MAX : 36 + declared);
    memcpy(w + 8, "WAVEfmt ", 8);
    put32(w + 16, 16);
    put16(w + 20, 1); /* PCM */
    put16(w + 22, channels);
    put32(w + 24, rate);
    put32(w + 28, rate * block);
    put16(w + 32, (uint16_t)block);
    put16(w + 34, bits);
    memcpy(w + 36, "data", 4);
    put32(w + 40, declared);
    for (size_t i = 0; i < n_data; i++)
        w[44 + i] = (unsigned char)(128 + 100 * sin(i * 0.05));
    *len = 44 + n_data;
    return w;
}

/* Bit writer for the hand-made FLAC stream below. */
typedef struct bits_out {
    unsigned char *p;
    size_t n_bits;
} bits_out;

static void put_bits(bits_out *b, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, b->n_bits++)
        if (v >> i & 1)
            b->p[b->n_bits / 8] |= (unsigned char)(0x80 >> (b->n_bits % 8));
}

static uint8_t flac_crc8(const unsigned char *p, size_t n)
{
    uint8_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (uint8_t)(c & 0x80 ? c << 1 ^ 0x07 : c << 1);
    }
    return c;
}

static uint16_t flac_crc16(const unsigned char *p, size_t n)
{
    uint16_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c ^= (uint16_t)(p[i] << 8);
        for (int k = 0; k < 8; k++)
            c = (uint16_t)(c & 0x8000 ? c << 1 ^ 0x8005 : c << 1);
    }
    return c;
}

/* A valid FLAC stream of `n_frames` frames of 65535 samples at 8 kHz, each a
 * CONSTANT subframe of 14 bytes: 8.2 s of audio for every 14 bytes, the
 * densest FLAC there is (real encoders use 4096-sample blocks and write
 * digital silence at ~0.005 s per byte). Its STREAMINFO leaves the length
 * unknown, so nothing before decoding tells how long it is. */
static unsigned char *make_dense_flac(int n_frames, size_t *len)
{
    unsigned char *f = calloc(1, 42 + (size_t)n_frames * 16);
    if (!f)
        return NULL;
    memcpy(f, "fLaC", 4);
    bits_out b = {f + 4, 0};
    put_bits(&b, 1, 1);      /* last metadata block */
    put_bits(&b, 0, 7);      /* STREAMINFO */
    put_bits(&b, 34, 24);
    put_bits(&b, 65535, 16); /* min and max block size */
    put_bits(&b, 65535, 16);
    put_bits(&b, 0, 24);     /* frame sizes unknown */
    put_bits(&b, 0, 24);
    put_bits(&b, 8000, 20);
    put_bits(&b, 0, 3);      /* mono */
    put_bits(&b, 15, 5);     /* 16 bits per sample */
    put_bits(&b, 0, 36);     /* total samples unknown; the MD5 stays zero */
    size_t pos = 42;
    for (int i = 0; i < n_frames; i++) {
        unsigned char *fr = f + pos;
        size_t n = 0;
        fr[n++] = 0xFF;
        fr[n++] = 0xF8;           /* sync, fixed block size */
        fr[n++] = 0x74;           /* block size: 16 bits at the end; 8 kHz */
        fr[n++] = 0x08;           /* mono, 16 bits */
        if (i < 0x80) {           /* frame number, UTF-8 coded */
            fr[n++] = (unsigned char)i;
        } else {
            fr[n++] = (unsigned char)(0xC0 | i >> 6);
            fr[n++] = (unsigned char)(0x80 | (i & 0x3F));
        }
        fr[n++] = 0xFF;
        fr[n++] = 0xFE;           /* 65535 - 1 */
        fr[n] = flac_crc8(fr, n);
        n++;
        fr[n++] = 0x00;           /* CONSTANT subframe */
        fr[n++] = 0x10;           /* the value 0x1000 */
        fr[n++] = 0x00;
        uint16_t crc = flac_crc16(fr, n);
        fr[n++] = (unsigned char)(crc >> 8);
        fr[n++] = (unsigned char)crc;
        pos += n;
    }
    *len = pos;
    return f;
}

/* What one decode did, measured in a forked child so that its peak memory
 * can be read on its own (the child's high-water RSS starts at its size at
 * fork, and ru_maxrss reports it). */
typedef struct decode_report {
    int ran;               /* the child reported back */
    asr_status status;
    size_t n_samples;
    long rss_growth_kb;    /* peak RSS during the decode minus before */
    double seconds;
    char message[sizeof ((asr_error *)0)->message];
} decode_report;

static decode_report decode_in_child(const void *data, size_t len, const asr_audio_limits *lim)
{
    decode_report r = {0};
    int fds[2];
    if (pipe(fds) != 0)
        return r;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        asr_audio a = {0};
        asr_error err;
        double t0 = seconds_now();
        decode_report out = {.ran = 1};
        out.status = asr_audio_decode_memory(data, len, lim, &a, &err);
        out.seconds = seconds_now() - t0;
        getrusage(RUSAGE_SELF, &after);
        out.n_samples = a.n_samples;
        out.rss_growth_kb = after.ru_maxrss - before.ru_maxrss;
        snprintf(out.message, sizeof out.message, "%s", err.message);
        asr_audio_free(&a);
        ssize_t w = write(fds[1], &out, sizeof out);
        _exit(w == (ssize_t)sizeof out ? 0 : 1);
    }
    close(fds[1]);
    if (pid > 0) {
        size_t got = 0;
        while (got < sizeof r) {
            ssize_t n = read(fds[0], (char *)&r + got, sizeof r - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got != sizeof r)
            r = (decode_report){0};
        int wstatus;
        waitpid(pid, &wstatus, 0);
    }
    close(fds[0]);
    return r;
}

static void check_amplification(void)
{
    /* The upload: 8 KB of 8-bit mono declaring 1 Hz, which decoded
     * as 2.3 hours (peak memory +1.1 GB). Refused before any decoding. */
    size_t len = 0;
    unsigned char *w = make_wav(1, 1, 8, 8192, 8192, &len);
    decode_report r = decode_in_child(w, len, NULL);
    CHECK(r.ran && r.status == ASR_ERR_AUDIO && r.n_samples == 0 &&
              strstr(r.message, "implausible sample rate 1 Hz") && r.rss_growth_kb < 32 * 1024,
          "8 KB WAV declaring 1 Hz → %s, peak RSS +%ld KB: %s", asr_strerror(r.status),
          r.rss_growth_kb, r.message);
    free(w);
    w = make_wav(1, 1, 8, 12288, 12288, &len);
    asr_audio_limits lim = asr_audio_default_limits();
    lim.max_duration_s = 10800;
    r = decode_in_child(w, len, &lim);
    CHECK(r.ran && r.status == ASR_ERR_AUDIO && r.rss_growth_kb < 32 * 1024,
          "12 KB WAV declaring 1 Hz with a 3 h limit → %s, peak RSS +%ld KB", asr_strerror(r.status),
          r.rss_growth_kb);
    free(w);

    /* The accepted range of rates and its edges. */
    static const struct { uint32_t rate; asr_status want; } rates[] = {
        {100, ASR_ERR_AUDIO}, {999, ASR_ERR_AUDIO}, {1000, ASR_OK},
        {768000, ASR_OK}, {768001, ASR_ERR_AUDIO}, {4000000, ASR_ERR_AUDIO},
    };
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        w = make_wav(rates[i].rate, 1, 8, 8192, 8192, &len);
        asr_audio a = {0};
        asr_error err;
        asr_status st = asr_audio_decode_memory(w, len, NULL, &a, &err);
        double want_n = 8192.0 * ASR_SAMPLE_RATE / rates[i].rate;
        int ok = st == rates[i].want &&
                 (st != ASR_OK || fabs((double)a.n_samples - want_n) <= 2 + want_n * 0.002);
        CHECK(ok, "8-bit WAV at %u Hz → %s, %zu samples (%s)", rates[i].rate, asr_strerror(st),
              a.n_samples, st == ASR_OK ? "ok" : err.message);
        asr_audio_free(&a);
        free(w);
    }

    /* Channel counts: 8 is fine, 65 and 65535 are refused. */
    static const struct { uint16_t channels; asr_status want; } chans[] = {
        {8, ASR_OK}, {65, ASR_ERR_AUDIO}, {65535, ASR_ERR_AUDIO},
    };
    for (size_t i = 0; i < sizeof chans / sizeof chans[0]; i++) {
        size_t n_data = (size_t)chans[i].channels * 512;
        w = make_wav(16000, chans[i].channels, 8, n_data, (uint32_t)n_data, &len);
        r = decode_in_child(w, len, NULL);
        CHECK(r.ran && r.status == chans[i].want && (r.status != ASR_OK || r.n_samples == 512) &&
                  r.rss_growth_kb < 64 * 1024,
              "WAV with %u channels → %s, %zu samples, peak RSS +%ld KB (%s)", chans[i].channels,
              asr_strerror(r.status), r.n_samples, r.rss_growth_kb, r.message);
        free(w);
    }

    /* A data chunk declaring 4 GB at 1 kHz (49 days) over 8 KB: the 8 KB decode. */
    w = make_wav(1000, 1, 8, 8192, 0xFFFFFFF0u, &len);
    r = decode_in_child(w, len, NULL);
    CHECK(r.ran && r.status == ASR_OK && labs((long)r.n_samples - 8192 * 16) <= 20 &&
              r.rss_growth_kb < 32 * 1024,
          "WAV declaring 49 days at 1 kHz over 8 KB: %zu samples, peak RSS +%ld KB (%s)", r.n_samples,
          r.rss_growth_kb, r.message);
    free(w);

    /* A 4 KB FLAC that holds 41 minutes: under the 3 h default limit, but
     * over 0.1 s per byte, so refused, having held at most its 411 s budget
     * (26 MB; the old decoder took all 41 minutes, +160 MB). */
    unsigned char *flac = make_dense_flac(300, &len);
    r = decode_in_child(flac, len, NULL);
    double budget_s = len * ASR_AUDIO_MAX_SECONDS_PER_BYTE;
    CHECK(r.ran && r.status == ASR_ERR_AUDIO && strstr(r.message, "per byte") &&
              r.rss_growth_kb < 100 * 1024,
          "%zu-byte FLAC holding 41 min → %s after %.2f s, peak RSS +%ld KB (budget %.0f s = %.0f MB): %s",
          len, asr_strerror(r.status), r.seconds, r.rss_growth_kb, budget_s,
          budget_s * ASR_SAMPLE_RATE * 4 / 1e6, r.message);
    /* With a smaller duration limit, that limit is the one reported. */
    lim = asr_audio_default_limits();
    lim.max_duration_s = 100;
    r = decode_in_child(flac, len, &lim);
    CHECK(r.ran && r.status == ASR_ERR_TOO_LARGE && r.rss_growth_kb < 32 * 1024,
          "same FLAC with max_duration_s 100 → %s, peak RSS +%ld KB: %s", asr_strerror(r.status),
          r.rss_growth_kb, r.message);
    free(flac);
    /* Every input may hold ASR_AUDIO_MIN_SECONDS_ALLOWED (60 s), however
     * small: 7 such frames (57 s in 133 bytes) decode. */
    flac = make_dense_flac(7, &len);
    asr_audio a = {0};
    asr_error err;
    asr_status st = asr_audio_decode_memory(flac, len, NULL, &a, &err);
    CHECK(st == ASR_OK && a.n_samples == 7 * 65535 * 2 && a.samples[1000] == 0x1000 / 32768.0f,
          "%zu-byte FLAC of 7 constant frames decodes: %zu samples (%s)", len, a.n_samples,
          st == ASR_OK ? "ok" : err.message);
    asr_audio_free(&a);
    free(flac);

    /* Raw PCM over the limit is refused before the buffer for all of it exists. */
    size_t raw_len = 64u << 20; /* 2097 s */
    unsigned char *raw = malloc(raw_len);
    if (raw) {
        for (size_t i = 0; i < raw_len; i++)
            raw[i] = (unsigned char)(i * 131u >> 3);
        lim = asr_audio_default_limits();
        lim.raw_pcm_s16le = 1;
        lim.max_duration_s = 10;
        r = decode_in_child(raw, raw_len, &lim);
        CHECK(r.ran && r.status == ASR_ERR_TOO_LARGE && r.rss_growth_kb < 16 * 1024,
              "64 MB of raw PCM with a 10 s limit → %s, peak RSS +%ld KB", asr_strerror(r.status),
              r.rss_growth_kb);
    }
    free(raw);
}

/* The abort hook: polled throughout, and the decode stops at the first yes. */
typedef struct abort_counter {
    int calls, abort_after;
} abort_counter;

static int count_then_abort(void *user_data)
{
    abort_counter *c = user_data;
    return ++c->calls > c->abort_after;
}

static void check_abort_hook(void)
{
    size_t len = 0;
    unsigned char *wav = read_file(data_path("jfk.wav"), &len);
    asr_audio a = {0};
    asr_error err;
    abort_counter never = {0, 1 << 30};
    asr_audio_limits lim = asr_audio_default_limits();
    lim.should_abort = count_then_abort;
    lim.abort_user_data = &never;
    asr_status st = wav ? asr_audio_decode_memory(wav, len, &lim, &a, &err) : ASR_ERR_IO;
    /* jfk.wav is 86 packets of 4 KB: at least one poll for each. */
    CHECK(st == ASR_OK && a.n_samples == 176000 && never.calls > 86,
          "a hook that never aborts: decodes, polled %d times", never.calls);
    asr_audio_free(&a);

    for (int after = 0; after <= 40; after += 10) {
        abort_counter c = {0, after};
        lim.abort_user_data = &c;
        double t0 = seconds_now();
        st = asr_audio_decode_file(data_path("longform/en-brian.ogg"), &lim, &a, &err);
        double dt = seconds_now() - t0;
        CHECK(st == ASR_ERR_CANCELLED && err.code == ASR_ERR_CANCELLED && a.samples == NULL &&
                  a.n_samples == 0 && c.calls == after + 1 && dt < 0.25,
              "hook says stop at poll %d: %s after %d polls, %.3f s: %s", after + 1,
              asr_strerror(st), c.calls, dt, err.message);
        asr_audio_free(&a);
    }
    /* From memory, mid-stream (jfk.mp3), and on the raw path. */
    abort_counter c = {0, 30};
    lim.abort_user_data = &c;
    size_t mp3_len = 0;
    unsigned char *mp3 = read_file(data_path("jfk.mp3"), &mp3_len);
    st = mp3 ? asr_audio_decode_memory(mp3, mp3_len, &lim, &a, &err) : ASR_ERR_IO;
    CHECK(st == ASR_ERR_CANCELLED && c.calls == 31 && a.samples == NULL,
          "mp3 from memory cancelled at poll 31: %s (%d polls)", asr_strerror(st), c.calls);
    asr_audio_free(&a);
    /* Halfway through the packets of the 5-minute file: it stops there, in
     * a fraction of the full decode's time. */
    never = (abort_counter){0, 1 << 30};
    lim.abort_user_data = &never;
    double t0 = seconds_now();
    st = asr_audio_decode_file(data_path("longform/en-brian.ogg"), &lim, &a, &err);
    double full_s = seconds_now() - t0;
    asr_audio_free(&a);
    c = (abort_counter){0, never.calls / 2};
    lim.abort_user_data = &c;
    t0 = seconds_now();
    asr_status st2 = asr_audio_decode_file(data_path("longform/en-brian.ogg"), &lim, &a, &err);
    double half_s = seconds_now() - t0;
    CHECK(st == ASR_OK && never.calls > 1000 && st2 == ASR_ERR_CANCELLED && c.calls == never.calls / 2 + 1 &&
              a.samples == NULL && half_s < full_s * 0.8,
          "5-minute Opus (%d polls, %.3f s) cancelled at poll %d: %s after %.3f s", never.calls, full_s,
          c.calls, asr_strerror(st2), half_s);
    asr_audio_free(&a);
    c = (abort_counter){0, 3};
    lim.raw_pcm_s16le = 1;
    st = wav ? asr_audio_decode_memory(wav, len, &lim, &a, &err) : ASR_ERR_IO;
    CHECK(st == ASR_ERR_CANCELLED && c.calls == 4 && a.samples == NULL,
          "raw PCM cancelled at poll 4: %s (%d polls)", asr_strerror(st), c.calls);
    asr_audio_free(&a);
    free(mp3);
    free(wav);
}

/* test_audio --dump IN OUT: write the decode of IN as s16le (our samples
 * are s16 / 32768, so this is exact), for tests/tools/ffmpeg_parity.sh. */
static int dump(const char *in, const char *out)
{
    asr_audio a = {0};
    asr_error err;
    if (asr_audio_decode_file(in, NULL, &a, &err) != ASR_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    int16_t *pcm = malloc(a.n_samples * sizeof(int16_t));
    for (size_t i = 0; pcm && i < a.n_samples; i++)
        pcm[i] = (int16_t)lrintf(a.samples[i] * 32768.0f);
    int rc = pcm && write_file(out, pcm, a.n_samples * sizeof(int16_t)) == 0 ? 0 : 1;
    free(pcm);
    asr_audio_free(&a);
    return rc;
}

/* A WAV so short that the resampler returns nothing on its first call: the
 * sample sink has no buffer yet, and storing 0 samples computed NULL + 0
 * (undefined; found by tests/fuzz/fuzz_audio.c, whose corpus keeps the input
 * as finding-wav-u8-null-offset.bin). The audio must still decode. */
static void check_tiny_resampled(void)
{
    for (int n = 75; n <= 200; n += 37) { /* fewer than ~60 give no samples at all (the filter delay) */
        unsigned char w[44 + 200];
        memcpy(w, "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\0\0\0\0\0\0\0\0\x01\0\x08\0data", 40);
        put32(w + 4, (uint32_t)(36 + n));
        put32(w + 24, 44100);
        put32(w + 28, 44100);
        put32(w + 40, (uint32_t)n);
        for (int i = 0; i < n; i++)
            w[44 + i] = (unsigned char)(128 + 60 * sin(i * 0.3));
        asr_audio a = {0};
        asr_error err;
        asr_status st = asr_audio_decode_memory(w, 44 + (size_t)n, NULL, &a, &err);
        size_t want = (size_t)n * 16000 / 44100;
        CHECK(st == ASR_OK && a.n_samples + 2 >= want && a.n_samples <= want + 2,
              "%d 8-bit samples at 44.1 kHz: %s, %zu samples (about %zu)", n, st == ASR_OK ? "ok" : err.message,
              a.n_samples, want);
        asr_audio_free(&a);
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--dump") == 0)
        return dump(argv[2], argv[3]);
    shared = getenv("ASR_SHARED");
    if (!shared || !*shared)
        shared = "../shared";
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/asr-test-audio-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    check_wav();
    check_formats();
    check_opus_and_longform();
    check_raw();
    check_float_wav();
    check_rate_change();
    check_concurrent();
    check_fifo();
    check_mutations();
    check_errors();
    check_amplification();
    check_abort_hook();
    check_tiny_resampled();
    asr_audio_free(&jfk);
    /* Remove the fixtures. */
    static const char *const names[] = {"jfk.m4a", "jfk.aac", "jfk.webm", "jfk_vorbis.ogg",
                                        "jfk_opus.mka", "goforward.bin", "empty.raw", "empty.wav",
                                        "noise.bin", "noise.mp3", "text.txt", "playlist.m3u8",
                                        "list.ffconcat", "subs.mkv", "lying.wav", "header-only.wav",
                                        "zero-channels.wav", "truncated.mp3", "tag-only.mp3",
                                        "wma.mka"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp_path(names[i]));
    rmdir(tmp_dir);
    return CHECK_DONE();
}
