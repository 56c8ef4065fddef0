/* audio.c — decoding untrusted audio files and uploads to 16 kHz mono float with FFmpeg. */
#include "internal.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/avstring.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* Containers we accept, by the name libavformat gives the detected demuxer.
 * Everything else (hls, concat, image2, subtitles, ...) is refused before the
 * demuxer opens: several demuxers open other files or URLs on their own. */
static const char *const allowed_formats[] = {
    "wav", "flac", "mp3", "ogg", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "aac",
};
#define FORMAT_WHITELIST "wav,flac,mp3,ogg,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,aac"

/* Audio decoders that those containers carry in practice. */
#define CODEC_WHITELIST                                                                    \
    "pcm_s16le,pcm_s16be,pcm_s24le,pcm_s24be,pcm_s32le,pcm_s32be,pcm_f32le,pcm_f32be,"     \
    "pcm_f64le,pcm_f64be,pcm_u8,pcm_alaw,pcm_mulaw,adpcm_ms,adpcm_ima_wav,gsm_ms,"         \
    "flac,alac,mp1,mp1float,mp2,mp2float,mp3,mp3float,vorbis,libvorbis,opus,libopus,"      \
    "aac,aac_fixed,aac_latm,ac3,ac3_fixed,eac3"

#define IO_BUFFER_SIZE 65536
#define PROBE_BYTES (1 << 20)        /* bytes the format probe may read        */
#define ANALYZE_US (5 * 1000 * 1000) /* stream-info analysis budget, microseconds */
#define MIN_PROBE_SCORE 26           /* above AVPROBE_SCORE_RETRY: no guessing */
/* Damaged packets are skipped as ffmpeg does, up to this many: past it the
 * input is more garbage than audio and decoding it is wasted work. */
#define MAX_BAD_PACKETS 1000
/* Resampling runs in chunks of this many input samples into a fixed buffer,
 * so no allocation depends on how much a frame claims to expand to. At the
 * lowest accepted rate (1 kHz → 16 kHz) a chunk gives 16384 samples, plus
 * the filter's delay: PCM16_CAP holds both with room to spare. */
#define RESAMPLE_IN_CHUNK 1024
#define PCM16_CAP 32768

asr_audio_limits asr_audio_default_limits(void)
{
    return (asr_audio_limits){.max_duration_s = ASR_AUDIO_DEFAULT_MAX_DURATION_S};
}

void asr_audio_free(asr_audio *audio)
{
    if (!audio)
        return;
    free(audio->samples);
    audio->samples = NULL;
    audio->n_samples = 0;
}

/* FFmpeg's logger is process-wide and prints to stderr by default; the
 * library must not print, and FFmpeg offers no per-context level for
 * demuxers, so the level is set to quiet once (the only global FFmpeg state
 * we touch). An application that wants FFmpeg's messages can raise the level
 * again after its first decode. */
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void make_ffmpeg_quiet(void) { av_log_set_level(AV_LOG_QUIET); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- where the bytes come from: a FILE or a memory buffer --------------- */

typedef struct byte_source {
    FILE *file;             /* set for files                    */
    const uint8_t *data;    /* set for memory                   */
    size_t size, pos;
    int64_t file_size;      /* -1 when unknown                  */
    uint64_t bytes_read;    /* handed to the demuxer so far      */
    double deadline;        /* monotonic seconds, 0 = none      */
    int (*should_abort)(void *user_data); /* the caller's hook, or NULL */
    void *abort_user_data;
    int timed_out;
    int aborted;            /* should_abort said stop           */
    int read_failed;        /* the FILE reported an error: a real I/O failure */
} byte_source;

/* Whether decoding must stop now: the caller's hook asked, or the deadline
 * passed. Sticky, so every layer that polls agrees on the reason. */
static int must_stop(byte_source *src)
{
    if (!src->aborted && src->should_abort && src->should_abort(src->abort_user_data))
        src->aborted = 1;
    if (!src->aborted && !src->timed_out && src->deadline > 0 && now_s() > src->deadline)
        src->timed_out = 1;
    return src->aborted || src->timed_out;
}

/* Bytes of input the ratio cap is measured against: the whole input where
 * its size is known, else (a pipe) what has been read so far. */
static uint64_t source_size_for_cap(const byte_source *src)
{
    if (!src->file)
        return src->size;
    if (src->file_size >= 0 && (uint64_t)src->file_size > src->bytes_read)
        return (uint64_t)src->file_size;
    return src->bytes_read;
}

static int source_read(void *opaque, uint8_t *buf, int buf_size)
{
    byte_source *src = opaque;
    if (must_stop(src))
        return AVERROR_EXIT;
    if (buf_size <= 0)
        return 0;
    if (src->file) {
        size_t got = fread(buf, 1, (size_t)buf_size, src->file);
        if (got == 0) {
            src->read_failed = ferror(src->file) != 0;
            return src->read_failed ? AVERROR(EIO) : AVERROR_EOF;
        }
        src->bytes_read += got;
        return (int)got;
    }
    if (src->pos >= src->size)
        return AVERROR_EOF;
    size_t n = src->size - src->pos;
    if (n > (size_t)buf_size)
        n = (size_t)buf_size;
    memcpy(buf, src->data + src->pos, n);
    src->pos += n;
    src->bytes_read += n;
    return (int)n;
}

static int64_t source_seek(void *opaque, int64_t offset, int whence)
{
    byte_source *src = opaque;
    int64_t size = src->file ? src->file_size : (int64_t)src->size;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return size >= 0 ? size : AVERROR(ENOSYS);
    int64_t base;
    if (whence == SEEK_SET)
        base = 0;
    else if (whence == SEEK_CUR)
        base = src->file ? (int64_t)ftello(src->file) : (int64_t)src->pos;
    else if (whence == SEEK_END && size >= 0)
        base = size;
    else
        return AVERROR(EINVAL);
    if ((offset > 0 && base > INT64_MAX - offset))
        return AVERROR(EINVAL);
    int64_t target = base + offset;
    if (target < 0)
        return AVERROR(EINVAL);
    if (src->file) {
        if (fseeko(src->file, (off_t)target, SEEK_SET) != 0)
            return AVERROR(EIO);
    } else {
        /* Seeking past the end is allowed; reads there return EOF. */
        src->pos = (uint64_t)target > src->size ? src->size : (size_t)target;
    }
    return target;
}

/* FFmpeg polls this inside blocking work (probing, reads, stream analysis). */
static int interrupt_cb(void *opaque) { return must_stop(opaque); }

/* ---- where the samples go ------------------------------------------------- */

typedef struct pcm_sink {
    float *samples; /* (cap,) mono 16 kHz */
    size_t n, cap;
    size_t max_samples; /* from max_duration_s; SIZE_MAX = unlimited */
    double max_duration_s;
    const byte_source *ratio_src; /* input the seconds-per-byte cap applies to; NULL = none */
} pcm_sink;

/* Samples the seconds-per-byte cap allows for this input (SIZE_MAX = no cap). */
static size_t ratio_max_samples(const pcm_sink *sink)
{
    if (!sink->ratio_src)
        return SIZE_MAX;
    double seconds = (double)source_size_for_cap(sink->ratio_src) * ASR_AUDIO_MAX_SECONDS_PER_BYTE;
    if (seconds < ASR_AUDIO_MIN_SECONDS_ALLOWED)
        seconds = ASR_AUDIO_MIN_SECONDS_ALLOWED;
    double samples = seconds * ASR_SAMPLE_RATE;
    return samples < (double)(SIZE_MAX / 8) ? (size_t)samples : SIZE_MAX / 8;
}

/* Check that `extra` more samples fit every budget, then make room for them.
 * The budget is checked first and the buffer never grows past it, so a
 * refused input never costs more memory than the limit it broke. */
static asr_status sink_reserve(pcm_sink *sink, size_t extra, asr_error *err)
{
    size_t by_ratio = ratio_max_samples(sink);
    size_t budget = sink->max_samples < by_ratio ? sink->max_samples : by_ratio;
    if (extra > budget || sink->n > budget - extra) {
        if (sink->max_samples <= by_ratio)
            return asr_fail(err, ASR_ERR_TOO_LARGE, "audio: longer than the limit of %.1f s",
                            sink->max_duration_s);
        return asr_fail(err, ASR_ERR_AUDIO,
                        "audio: %llu bytes of input decode to more than %.0f s of audio "
                        "(over %.2g s per byte): the file is malformed or crafted",
                        (unsigned long long)source_size_for_cap(sink->ratio_src),
                        (double)budget / ASR_SAMPLE_RATE, ASR_AUDIO_MAX_SECONDS_PER_BYTE);
    }
    size_t need = sink->n + extra; /* <= budget <= SIZE_MAX / 8 */
    if (need <= sink->cap)
        return ASR_OK;
    size_t cap = sink->cap ? sink->cap : 16000 * 8;
    while (cap < need)
        cap *= 2;
    if (cap > budget)
        cap = budget;
    float *p = realloc(sink->samples, cap * sizeof(float));
    if (!p)
        return asr_fail(err, ASR_ERR_NO_MEMORY, "audio: out of memory for %zu samples", cap);
    sink->samples = p;
    sink->cap = cap;
    return ASR_OK;
}

static void sink_init(pcm_sink *sink, const asr_audio_limits *limits, const byte_source *ratio_src)
{
    *sink = (pcm_sink){.max_samples = SIZE_MAX / 8, .max_duration_s = limits->max_duration_s,
                       .ratio_src = ratio_src};
    if (limits->max_duration_s > 0) {
        double max = limits->max_duration_s * ASR_SAMPLE_RATE;
        if (max < (double)(SIZE_MAX / 8))
            sink->max_samples = (size_t)max;
    }
}

/* Hand the samples to the caller, trimming the growth slack. */
static asr_status sink_finish(pcm_sink *sink, asr_audio *out, asr_error *err)
{
    if (sink->n == 0) {
        free(sink->samples);
        sink->samples = NULL;
        return asr_fail(err, ASR_ERR_AUDIO, "audio: no audio samples could be decoded");
    }
    float *p = realloc(sink->samples, sink->n * sizeof(float));
    out->samples = p ? p : sink->samples;
    out->n_samples = sink->n;
    sink->samples = NULL;
    return ASR_OK;
}

/* ---- raw s16le PCM (no FFmpeg: nothing to detect) -------------------------- */

static asr_status convert_s16le(pcm_sink *sink, const uint8_t *bytes, size_t n_bytes,
                                asr_error *err)
{
    size_t n = n_bytes / 2;
    asr_status st = sink_reserve(sink, n, err);
    if (st != ASR_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        int16_t v = (int16_t)(uint16_t)(bytes[2 * i] | bytes[2 * i + 1] << 8);
        sink->samples[sink->n + i] = v * (1.0f / 32768.0f);
    }
    sink->n += n;
    return ASR_OK;
}

static asr_status stop_status(const byte_source *src, const asr_audio_limits *limits, asr_error *err)
{
    if (src->aborted)
        return asr_fail(err, ASR_ERR_CANCELLED, "audio: decoding was cancelled");
    return asr_fail(err, ASR_ERR_TIMEOUT, "audio: decoding deadline of %.3g s passed",
                    limits->deadline_s);
}

static asr_status decode_raw(byte_source *src, const asr_audio_limits *limits, asr_audio *out,
                             asr_error *err)
{
    pcm_sink sink;
    sink_init(&sink, limits, NULL); /* 2 bytes a sample: nothing to amplify */
    asr_status st = ASR_OK;
    if (src->file) {
        uint8_t buf[IO_BUFFER_SIZE];
        size_t carry = 0; /* an odd byte left from the previous read */
        for (;;) {
            if (must_stop(src)) {
                st = stop_status(src, limits, err);
                break;
            }
            size_t got = fread(buf + carry, 1, sizeof buf - carry, src->file);
            if (got == 0) {
                if (ferror(src->file))
                    st = asr_fail(err, ASR_ERR_IO, "audio: read error: %s", strerror(errno));
                break;
            }
            size_t have = carry + got;
            st = convert_s16le(&sink, buf, have & ~(size_t)1, err);
            if (st != ASR_OK)
                break;
            carry = have & 1;
            if (carry)
                buf[0] = buf[have - 1];
        }
    } else {
        /* In blocks, so the budget and the hook are checked as it goes. */
        for (size_t pos = 0; pos + 1 < src->size; pos += IO_BUFFER_SIZE) {
            if (must_stop(src)) {
                st = stop_status(src, limits, err);
                break;
            }
            size_t n = src->size - pos < IO_BUFFER_SIZE ? src->size - pos : IO_BUFFER_SIZE;
            if ((st = convert_s16le(&sink, src->data + pos, n, err)) != ASR_OK)
                break;
        }
    }
    if (st != ASR_OK) {
        free(sink.samples);
        return st;
    }
    if (sink.n == 0) {
        free(sink.samples);
        return asr_fail(err, ASR_ERR_AUDIO, "audio: raw PCM input is empty");
    }
    return sink_finish(&sink, out, err);
}

/* ---- FFmpeg decoding ----------------------------------------------------------- */

typedef struct ff_decoder {
    byte_source *src;
    const asr_audio_limits *limits;
    AVIOContext *avio;
    AVFormatContext *fmt;
    AVCodecContext *codec;
    SwrContext *swr;
    AVPacket *packet;
    AVFrame *frame;
    int stream_index;
    /* input format swr is configured for */
    int swr_rate, swr_format;
    AVChannelLayout swr_layout;
    int16_t *pcm16; /* (PCM16_CAP,) swr's output before it becomes float */
    pcm_sink sink;
    int n_bad_packets;
} ff_decoder;

static void ff_decoder_close(ff_decoder *d)
{
    swr_free(&d->swr);
    free(d->pcm16);
    d->pcm16 = NULL;
    av_channel_layout_uninit(&d->swr_layout);
    av_frame_free(&d->frame);
    av_packet_free(&d->packet);
    avcodec_free_context(&d->codec);
    avformat_close_input(&d->fmt); /* leaves the custom AVIOContext to us */
    if (d->avio) {
        av_freep(&d->avio->buffer);
        avio_context_free(&d->avio);
    }
    free(d->sink.samples);
    d->sink.samples = NULL;
}

static const char *av_err(int code, char *buf, size_t size)
{
    if (av_strerror(code, buf, size) < 0)
        snprintf(buf, size, "error %d", code);
    return buf;
}

/* Map an FFmpeg failure to our status; a stop we asked for (cancel, then
 * deadline) takes precedence over whatever FFmpeg made of it. */
static asr_status ff_fail(ff_decoder *d, asr_error *err, int code, const char *what)
{
    char buf[128];
    if (d->src->aborted || d->src->timed_out || code == AVERROR_EXIT)
        return stop_status(d->src, d->limits, err);
    if (code == AVERROR(ENOMEM))
        return asr_fail(err, ASR_ERR_NO_MEMORY, "audio: out of memory while %s", what);
    /* Demuxers also say EIO about damaged data; only our reader knows
     * whether the file itself failed. */
    if (d->src->read_failed)
        return asr_fail(err, ASR_ERR_IO, "audio: read error while %s", what);
    if (code == AVERROR(EIO) || code == AVERROR_EOF)
        return asr_fail(err, ASR_ERR_AUDIO, "audio: %s failed: the data is damaged or truncated",
                        what);
    return asr_fail(err, ASR_ERR_AUDIO, "audio: %s failed: %s", what,
                    av_err(code, buf, sizeof buf));
}

static asr_status ff_open(ff_decoder *d, asr_error *err)
{
    uint8_t *iobuf = av_malloc(IO_BUFFER_SIZE);
    if (!iobuf)
        return asr_fail(err, ASR_ERR_NO_MEMORY, "audio: out of memory");
    d->avio = avio_alloc_context(iobuf, IO_BUFFER_SIZE, 0, d->src, source_read, NULL, source_seek);
    if (!d->avio) {
        av_free(iobuf);
        return asr_fail(err, ASR_ERR_NO_MEMORY, "audio: out of memory");
    }
    /* A pipe or FIFO cannot seek: say so, and demuxers read straight through. */
    if (d->src->file && d->src->file_size < 0)
        d->avio->seekable = 0;
    /* Detect the container ourselves so it can be checked against the
     * allow-list before any demuxer code runs on the input. */
    const AVInputFormat *iformat = NULL;
    int score = av_probe_input_buffer2(d->avio, &iformat, "", NULL, 0, PROBE_BYTES);
    if (d->src->timed_out || d->src->aborted)
        return ff_fail(d, err, AVERROR_EXIT, "probing the format");
    if (score < 0 || !iformat) {
        if (score == AVERROR_EOF || (d->src->file ? d->src->file_size == 0 : d->src->size == 0))
            return asr_fail(err, ASR_ERR_AUDIO, "audio: input is empty");
        return asr_fail(err, ASR_ERR_AUDIO, "audio: not a recognised audio format");
    }
    if (score < MIN_PROBE_SCORE)
        return asr_fail(err, ASR_ERR_AUDIO,
                        "audio: not a recognised audio format (only a weak guess of %s)",
                        iformat->name);
    int allowed = 0;
    for (size_t i = 0; i < sizeof allowed_formats / sizeof allowed_formats[0]; i++)
        allowed |= strcmp(iformat->name, allowed_formats[i]) == 0;
    if (!allowed)
        return asr_fail(err, ASR_ERR_AUDIO, "audio: unsupported format '%s'", iformat->name);

    d->fmt = avformat_alloc_context();
    if (!d->fmt)
        return asr_fail(err, ASR_ERR_NO_MEMORY, "audio: out of memory");
    d->fmt->pb = d->avio;
    d->fmt->interrupt_callback = (AVIOInterruptCB){.callback = interrupt_cb, .opaque = d->src};
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "format_whitelist", FORMAT_WHITELIST, 0);
    av_dict_set(&opts, "codec_whitelist", CODEC_WHITELIST, 0);
    av_dict_set(&opts, "protocol_whitelist", "none", 0); /* no nested opens of any kind */
    av_dict_set_int(&opts, "probesize", PROBE_BYTES, 0);
    av_dict_set_int(&opts, "analyzeduration", ANALYZE_US, 0);
    av_dict_set_int(&opts, "max_streams", 64, 0);
    int rc = avformat_open_input(&d->fmt, NULL, iformat, &opts);
    av_dict_free(&opts);
    if (rc < 0) /* avformat_open_input frees the context on failure */
        return ff_fail(d, err, rc, "opening the container");
    rc = avformat_find_stream_info(d->fmt, NULL);
    if (rc < 0)
        return ff_fail(d, err, rc, "reading stream information");

    const AVCodec *codec = NULL;
    rc = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (rc == AVERROR_STREAM_NOT_FOUND)
        return asr_fail(err, ASR_ERR_AUDIO, "audio: the %s input has no audio stream",
                        iformat->name);
    if (rc < 0 || !codec)
        return asr_fail(err, ASR_ERR_AUDIO, "audio: no decoder for the audio stream");
    if (av_match_list(codec->name, CODEC_WHITELIST, ',') <= 0)
        return asr_fail(err, ASR_ERR_AUDIO, "audio: unsupported audio codec '%s'", codec->name);
    d->stream_index = rc;
    /* Refuse what cannot be real audio before decoding any of it. */
    const AVCodecParameters *par = d->fmt->streams[d->stream_index]->codecpar;
    if (par->sample_rate != 0 &&
        (par->sample_rate < ASR_AUDIO_MIN_RATE || par->sample_rate > ASR_AUDIO_MAX_RATE))
        return asr_fail(err, ASR_ERR_AUDIO,
                        "audio: implausible sample rate %d Hz (accepted: %d to %d Hz)",
                        par->sample_rate, ASR_AUDIO_MIN_RATE, ASR_AUDIO_MAX_RATE);
    if (par->ch_layout.nb_channels > ASR_AUDIO_MAX_CHANNELS)
        return asr_fail(err, ASR_ERR_AUDIO, "audio: %d channels (at most %d are accepted)",
                        par->ch_layout.nb_channels, ASR_AUDIO_MAX_CHANNELS);
    for (unsigned i = 0; i < d->fmt->nb_streams; i++)
        if ((int)i != d->stream_index)
            d->fmt->streams[i]->discard = AVDISCARD_ALL;

    d->codec = avcodec_alloc_context3(codec);
    if (!d->codec)
        return asr_fail(err, ASR_ERR_NO_MEMORY, "audio: out of memory");
    rc = avcodec_parameters_to_context(d->codec, d->fmt->streams[d->stream_index]->codecpar);
    if (rc < 0)
        return ff_fail(d, err, rc, "setting up the decoder");
    d->codec->thread_count = 1; /* the caller parallelises across requests */
    AVDictionary *copts = NULL;
    av_dict_set(&copts, "codec_whitelist", CODEC_WHITELIST, 0);
    rc = avcodec_open2(d->codec, codec, &copts);
    av_dict_free(&copts);
    if (rc < 0)
        return ff_fail(d, err, rc, "opening the decoder");

    d->packet = av_packet_alloc();
    d->frame = av_frame_alloc();
    d->pcm16 = malloc(PCM16_CAP * sizeof *d->pcm16);
    if (!d->packet || !d->frame || !d->pcm16)
        return asr_fail(err, ASR_ERR_NO_MEMORY, "audio: out of memory");
    return ASR_OK;
}

/* Move `got` samples of swr's s16 output into the sink, budget first. */
static asr_status ff_store(ff_decoder *d, int got, asr_error *err)
{
    if (got <= 0) /* nothing to store; the sink may not have a buffer yet (NULL + 0 is undefined) */
        return ASR_OK;
    asr_status st = sink_reserve(&d->sink, (size_t)got, err);
    if (st != ASR_OK)
        return st;
    float *x = d->sink.samples + d->sink.n;
    for (int i = 0; i < got; i++)
        x[i] = d->pcm16[i] * (1.0f / 32768.0f);
    d->sink.n += (size_t)got;
    return ASR_OK;
}

/* Resample in_count samples of a frame in the format swr is set up for
 * (in == NULL: drain swr's filter delay) into the sink, RESAMPLE_IN_CHUNK
 * input samples at a time into the fixed pcm16 buffer.
 * swr writes s16, as `ffmpeg -ac 1 -ar 16000 -f s16le` in whisper's
 * load_audio (and PyAV in faster-whisper) does, and the sink gets s16 / 32768:
 * the samples come out bit-identical to what those feed their models (this
 * also clips, and maps NaN/Inf from float sources to finite values). */
static asr_status ff_resample(ff_decoder *d, const uint8_t *const *in, int in_count, asr_error *err)
{
    uint8_t *out = (uint8_t *)d->pcm16;
    asr_status st;
    if (!in) {
        for (;;) {
            int got = swr_convert(d->swr, &out, PCM16_CAP, NULL, 0);
            if (got < 0)
                return ff_fail(d, err, got, "resampling");
            if (got == 0)
                return ASR_OK;
            if ((st = ff_store(d, got, err)) != ASR_OK)
                return st;
        }
    }
    int channels = d->swr_layout.nb_channels;
    int planar = av_sample_fmt_is_planar((enum AVSampleFormat)d->swr_format);
    int n_planes = planar ? channels : 1;
    size_t step = (size_t)av_get_bytes_per_sample((enum AVSampleFormat)d->swr_format) *
                  (size_t)(planar ? 1 : channels); /* bytes per sample in each plane */
    if (channels <= 0 || channels > ASR_AUDIO_MAX_CHANNELS || step == 0)
        return asr_fail(err, ASR_ERR_INTERNAL, "audio: resampler set up for %d channels", channels);
    const uint8_t *planes[ASR_AUDIO_MAX_CHANNELS];
    for (int done = 0; done < in_count;) {
        if (must_stop(d->src))
            return ff_fail(d, err, AVERROR_EXIT, "resampling");
        int n = in_count - done < RESAMPLE_IN_CHUNK ? in_count - done : RESAMPLE_IN_CHUNK;
        int bound = swr_get_out_samples(d->swr, n);
        if (bound < 0)
            return ff_fail(d, err, bound, "resampling");
        if (bound > PCM16_CAP) /* the rate bounds rule this out */
            return asr_fail(err, ASR_ERR_INTERNAL, "audio: resampler would write %d samples", bound);
        for (int p = 0; p < n_planes; p++)
            planes[p] = in[p] + (size_t)done * step;
        int got = swr_convert(d->swr, &out, PCM16_CAP, planes, n);
        if (got < 0)
            return ff_fail(d, err, got, "resampling");
        if ((st = ff_store(d, got, err)) != ASR_OK)
            return st;
        done += n;
    }
    return ASR_OK;
}

/* (Re)configure the resampler for this frame's rate, format and layout:
 * chained Ogg streams and some MP3s change them mid-stream. */
static asr_status ff_setup_resampler(ff_decoder *d, const AVFrame *frame, asr_error *err)
{
    AVChannelLayout in_layout = {0};
    int rc;
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || frame->ch_layout.nb_channels <= 0) {
        int channels = frame->ch_layout.nb_channels > 0 ? frame->ch_layout.nb_channels : 1;
        av_channel_layout_default(&in_layout, channels);
    } else if ((rc = av_channel_layout_copy(&in_layout, &frame->ch_layout)) < 0) {
        return ff_fail(d, err, rc, "reading the channel layout");
    }
    if (d->swr && d->swr_rate == frame->sample_rate && d->swr_format == frame->format &&
        av_channel_layout_compare(&d->swr_layout, &in_layout) == 0) {
        av_channel_layout_uninit(&in_layout);
        return ASR_OK;
    }
    if (d->swr) {
        asr_status st = ff_resample(d, NULL, 0, err);
        if (st != ASR_OK) {
            av_channel_layout_uninit(&in_layout);
            return st;
        }
        swr_free(&d->swr);
    }
    if (frame->sample_rate < ASR_AUDIO_MIN_RATE || frame->sample_rate > ASR_AUDIO_MAX_RATE) {
        av_channel_layout_uninit(&in_layout);
        return asr_fail(err, ASR_ERR_AUDIO,
                        "audio: implausible sample rate %d Hz (accepted: %d to %d Hz)",
                        frame->sample_rate, ASR_AUDIO_MIN_RATE, ASR_AUDIO_MAX_RATE);
    }
    if (in_layout.nb_channels > ASR_AUDIO_MAX_CHANNELS) {
        int channels = in_layout.nb_channels;
        av_channel_layout_uninit(&in_layout);
        return asr_fail(err, ASR_ERR_AUDIO, "audio: %d channels (at most %d are accepted)",
                        channels, ASR_AUDIO_MAX_CHANNELS);
    }
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    /* With s16 output swr normalises the downmix matrix, so stereo becomes
     * (L+R)/2 exactly as with `ffmpeg -ac 1`. */
    rc = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_S16, ASR_SAMPLE_RATE, &in_layout,
                             frame->format, frame->sample_rate, 0, NULL);
    if (rc >= 0)
        rc = swr_init(d->swr);
    if (rc < 0) {
        av_channel_layout_uninit(&in_layout);
        swr_free(&d->swr);
        return ff_fail(d, err, rc, "setting up the resampler");
    }
    av_channel_layout_uninit(&d->swr_layout);
    d->swr_layout = in_layout;
    d->swr_rate = frame->sample_rate;
    d->swr_format = frame->format;
    return ASR_OK;
}

/* Pull every frame the decoder has ready and resample it into the sink. */
static asr_status ff_receive_frames(ff_decoder *d, asr_error *err)
{
    for (;;) {
        int rc = avcodec_receive_frame(d->codec, d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return ASR_OK;
        if (rc == AVERROR_INVALIDDATA) { /* a damaged frame: skip it, as ffmpeg does */
            if (++d->n_bad_packets > MAX_BAD_PACKETS)
                return asr_fail(err, ASR_ERR_AUDIO, "audio: the audio stream is corrupt "
                                "(more than %d damaged packets)", MAX_BAD_PACKETS);
            continue;
        }
        if (rc < 0)
            return ff_fail(d, err, rc, "decoding");
        asr_status st = ff_setup_resampler(d, d->frame, err);
        if (st == ASR_OK)
            st = ff_resample(d, (const uint8_t *const *)d->frame->extended_data,
                             d->frame->nb_samples, err);
        av_frame_unref(d->frame);
        if (st != ASR_OK)
            return st;
        if (must_stop(d->src))
            return ff_fail(d, err, AVERROR_EXIT, "decoding");
    }
}

static asr_status ff_decode_all(ff_decoder *d, asr_error *err)
{
    asr_status st;
    for (;;) {
        int rc = av_read_frame(d->fmt, d->packet);
        if (rc < 0) {
            if (d->src->timed_out || d->src->aborted || rc == AVERROR_EXIT)
                return ff_fail(d, err, rc, "reading");
            if (rc == AVERROR(ENOMEM) || d->src->read_failed)
                return ff_fail(d, err, rc, "reading");
            /* EOF, or damage / truncation: keep what decoded so far. */
            break;
        }
        if (d->packet->stream_index == d->stream_index) {
            rc = avcodec_send_packet(d->codec, d->packet);
            if (rc == AVERROR_INVALIDDATA) {
                if (++d->n_bad_packets > MAX_BAD_PACKETS) {
                    av_packet_unref(d->packet);
                    return asr_fail(err, ASR_ERR_AUDIO, "audio: the audio stream is corrupt "
                                    "(more than %d damaged packets)", MAX_BAD_PACKETS);
                }
            } else if (rc < 0 && rc != AVERROR(EAGAIN)) {
                av_packet_unref(d->packet);
                return ff_fail(d, err, rc, "decoding");
            }
        }
        av_packet_unref(d->packet);
        if ((st = ff_receive_frames(d, err)) != ASR_OK)
            return st;
        if (must_stop(d->src))
            return ff_fail(d, err, AVERROR_EXIT, "reading");
    }
    /* Flush the decoder, then the resampler's delay line. */
    if (avcodec_send_packet(d->codec, NULL) >= 0 && (st = ff_receive_frames(d, err)) != ASR_OK)
        return st;
    if (d->swr && (st = ff_resample(d, NULL, 0, err)) != ASR_OK)
        return st;
    return ASR_OK;
}

static asr_status decode_source(byte_source *src, const asr_audio_limits *limits, int raw,
                                asr_audio *out, asr_error *err)
{
    pthread_once(&quiet_once, make_ffmpeg_quiet);
    if (limits->deadline_s > 0)
        src->deadline = now_s() + limits->deadline_s;
    src->should_abort = limits->should_abort;
    src->abort_user_data = limits->abort_user_data;
    if (must_stop(src))
        return stop_status(src, limits, err);
    if (raw)
        return decode_raw(src, limits, out, err);
    ff_decoder d = {.src = src, .limits = limits, .stream_index = -1};
    sink_init(&d.sink, limits, src);
    asr_status st = ff_open(&d, err);
    if (st == ASR_OK)
        st = ff_decode_all(&d, err);
    if (st == ASR_OK && d.sink.n == 0) {
        if (d.n_bad_packets > 0)
            st = asr_fail(err, ASR_ERR_AUDIO, "audio: the audio stream is corrupt (%d bad packets)",
                          d.n_bad_packets);
        else
            st = asr_fail(err, ASR_ERR_AUDIO, "audio: the audio stream holds no samples");
    }
    if (st == ASR_OK)
        st = sink_finish(&d.sink, out, err);
    ff_decoder_close(&d);
    return st;
}

static int has_raw_extension(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return 0;
    return strcasecmp(dot, ".raw") == 0 || strcasecmp(dot, ".pcm") == 0;
}

asr_status asr_audio_decode_file(const char *path, const asr_audio_limits *limits,
                                 asr_audio *out, asr_error *err)
{
    asr_error_clear(err);
    if (!out)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "audio: NULL output");
    *out = (asr_audio){0};
    if (!path || !*path)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "audio: empty path");
    asr_audio_limits lim = limits ? *limits : asr_audio_default_limits();
    /* The file is read through our own callbacks rather than FFmpeg's file
     * protocol, so a name is only ever a local path, never a URL. */
    FILE *f = fopen(path, "rb");
    if (!f)
        return asr_fail(err, ASR_ERR_IO, "audio: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || S_ISDIR(sb.st_mode)) {
        fclose(f);
        return asr_fail(err, ASR_ERR_IO, "audio: %s is not a readable file", path);
    }
    byte_source src = {.file = f, .file_size = S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1};
    asr_status st = decode_source(&src, &lim, lim.raw_pcm_s16le || has_raw_extension(path), out, err);
    fclose(f);
    if (st != ASR_OK && err && st != ASR_ERR_IO && st != ASR_ERR_NO_MEMORY) {
        /* Name the file in the message: the caller may decode many. */
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%.200s: %.300s", path, err->message);
        memcpy(err->message, msg, sizeof msg);
    }
    return st;
}

asr_status asr_audio_decode_memory(const void *data, size_t size, const asr_audio_limits *limits,
                                   asr_audio *out, asr_error *err)
{
    asr_error_clear(err);
    if (!out)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "audio: NULL output");
    *out = (asr_audio){0};
    if (!data && size)
        return asr_fail(err, ASR_ERR_INVALID_ARGUMENT, "audio: NULL data");
    if (size == 0)
        return asr_fail(err, ASR_ERR_AUDIO, "audio: input is empty");
    asr_audio_limits lim = limits ? *limits : asr_audio_default_limits();
    byte_source src = {.data = data, .size = size, .file_size = -1};
    return decode_source(&src, &lim, lim.raw_pcm_s16le, out, err);
}
