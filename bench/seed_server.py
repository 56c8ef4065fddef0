#!/usr/bin/env python3
"""seed_server.py — the stack asr replaces: FastAPI + uvicorn around faster-whisper, serving OpenAI's transcription route.

Only for bench/run.py's server comparison, run from the bench venv:

    seed_server.py --port 8100 --model ~/.cache/asr/models/tiny.en --compute-type int8 \
                   --threads 2 --workers 1

POST /v1/audio/transcriptions (multipart: file, model, response_format=json|text,
language) returns {"text": ...}. `--workers` is faster-whisper's num_workers:
how many transcriptions run at once in the one process, as `asr serve --workers`.
Listens on 127.0.0.1 only.
"""
import argparse
import os
import tempfile

import uvicorn
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import PlainTextResponse
from faster_whisper import WhisperModel


def make_app(model: WhisperModel) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"status": "ok"}

    # A plain def: FastAPI runs it in its thread pool, so requests overlap up to num_workers.
    @app.post("/v1/audio/transcriptions")
    def transcriptions(file: UploadFile = File(...), model_name: str = Form("whisper-1", alias="model"),
                       response_format: str = Form("json"), language: str = Form("en")):
        if response_format not in ("json", "text"):
            raise HTTPException(400, f"unsupported response_format {response_format!r}")
        with tempfile.NamedTemporaryFile(suffix=os.path.splitext(file.filename or "")[1]) as tmp:
            tmp.write(file.file.read())
            tmp.flush()
            try:
                segments, _ = model.transcribe(tmp.name, language=language, beam_size=1,
                                               temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                                               condition_on_previous_text=True, vad_filter=False)
                text = "".join(s.text for s in segments).strip()
            except Exception as e:  # undecodable upload
                raise HTTPException(400, f"cannot transcribe: {e}") from e
        return PlainTextResponse(text) if response_format == "text" else {"text": text}

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    model = WhisperModel(args.model, device="cpu", compute_type=args.compute_type,
                         cpu_threads=args.threads, num_workers=args.workers)
    uvicorn.run(make_app(model), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
