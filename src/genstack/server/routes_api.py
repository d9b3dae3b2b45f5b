"""``/api``: collections (list, create, delete, search, upload), ingest jobs, feedback, limits."""

from __future__ import annotations

import re
import threading
import time
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..errors import GenstackError
from .errors import APIError

router = APIRouter(prefix="/api")

_ingest_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genstack-ingest")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILES = 50


def _gs(request: Request):
    return request.app.state.gs


async def _json(request: Request) -> dict:
    from .routes_openai import read_json

    body = await read_json(request)
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    return body


def safe_filename(name: str) -> str:
    """A file name with no path, no leading dots and only [A-Za-z0-9._-]; the suffix kept lower-case."""
    from ..documents.loaders import SUPPORTED_SUFFIXES

    base = unicodedata.normalize("NFKC", str(name or "")).replace("\\", "/").split("/")[-1]
    base = _SAFE.sub("_", base).lstrip(".-_")
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        raise APIError(400, f"file {name!r} has no file type; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}",
                       param="files")
    suffix = "." + suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise APIError(415, f"file type {suffix!r} of {name!r} is not supported; supported: "
                            f"{', '.join(sorted(SUPPORTED_SUFFIXES))}", param="files", code="unsupported_file_type")
    return stem[:120] + suffix


def uploads_dir(settings, collection: str) -> Path:
    from ..stores.collections import check_name

    return settings.data_dir / "uploads" / check_name(collection)


@router.get("/config")
async def config(request: Request):
    gs = _gs(request)
    c = gs.config
    return {"auth": bool(c.api_keys), "max_tokens_cap": c.max_tokens_cap, "max_upload_bytes": c.max_upload_bytes,
            "max_prompt_tokens": c.max_prompt_tokens, "default_model": gs.settings.default_model,
            "version": request.app.version}


@router.get("/collections")
async def collections(request: Request):
    gs = _gs(request)
    gs.authorize(request)
    from ..stores.collections import list_collections

    return {"collections": [c for c in list_collections(gs.settings) if gs.may_use(request, c["name"])]}


@router.post("/collections", status_code=201)
async def create_collection(request: Request):
    gs = _gs(request)
    gs.authorize(request)
    body = await _json(request)
    from ..stores.collections import check_name, collection_exists, open_collection

    name = body.get("name")
    try:
        check_name(name)
    except Exception as exc:
        raise APIError(400, str(exc), param="name") from None
    gs.check_collection(request, name)
    if collection_exists(name, gs.settings):
        raise APIError(409, f"collection {name!r} already exists", param="name", code="collection_exists")
    emb = gs.engine.embedder(body.get("embedder"))
    store = body.get("store")
    if store is not None and not isinstance(store, str):
        raise APIError(400, "store must be a store backend name", param="store")
    try:
        open_collection(name, gs.settings, create=True, embedder=emb.name, dim=emb.dim, store=store).close()
    except GenstackError as exc:
        raise APIError(400, str(exc), param="store") from None
    return {"name": name, "embedder": emb.name, "store": store or gs.settings.store, "chunks": 0}


@router.delete("/collections/{name}")
async def delete_collection(name: str, request: Request):
    gs = _gs(request)
    gs.authorize(request)
    gs.check_collection(request, name)
    import shutil

    from ..stores.collections import delete_collection as delete

    gs.engine.forget_collection(name)
    delete(name, gs.settings)
    shutil.rmtree(uploads_dir(gs.settings, name), ignore_errors=True)
    return {"name": name, "deleted": True}


def _hit(h) -> dict[str, Any]:
    md = {k: v for k, v in h.metadata.items() if k not in ("source", "file_hash")}
    return {"id": h.id, "source": Path(h.source).name if h.source else "", "score": round(float(h.score), 6),
            "similarity": None if h.similarity is None else round(float(h.similarity), 4),
            "text": h.text, "metadata": md}


@router.post("/collections/{name}/search")
async def search(name: str, request: Request):
    gs = _gs(request)
    gs.authorize(request)
    gs.check_collection(request, name)
    body = await _json(request)
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise APIError(400, "query must be a non-empty string", param="query")
    k, mode, filters = body.get("k", 5), body.get("mode", "hybrid"), body.get("filters") or None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
        raise APIError(400, "k must be an integer from 1 to 100", param="k")
    if filters is not None and not isinstance(filters, dict):
        raise APIError(400, "filters must be an object of metadata key: value", param="filters")
    engine = gs.engine

    def work():
        t0 = time.perf_counter()
        r = engine.retriever(name)
        try:
            hits = r.search(query, k=k, mode=mode, filters=filters)
        finally:
            r.close()
        return hits, time.perf_counter() - t0

    hits, dt = await engine.run(work)
    gs.metrics.retrieval.labels(name).observe(dt)
    return {"collection": name, "query": query, "mode": mode, "hits": [_hit(h) for h in hits],
            "seconds": round(dt, 4)}


@router.post("/collections/{name}/documents", status_code=202)
async def upload(name: str, request: Request):
    """Multipart upload (field ``files``) into an existing collection (``?create=true`` makes it);
    the files are stored under the data directory and ingested in the background. Poll
    ``GET /api/jobs/{id}`` for progress. Files that fail to ingest are removed again."""
    from ..stores.collections import collection_exists

    gs = _gs(request)
    gs.authorize(request)
    gs.check_collection(request, name)
    folder = uploads_dir(gs.settings, name)  # checks the collection name
    create = request.query_params.get("create", "").lower() in ("1", "true", "yes")
    if not create and not collection_exists(name, gs.settings):
        raise APIError(404, f"no collection named {name!r}: create it first (POST /api/collections) "
                            "or upload with ?create=true", code="collection_not_found")
    form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    files = [f for f in form.getlist("files") + form.getlist("file") if hasattr(f, "filename")]
    if not files:
        raise APIError(400, "no files: send them as multipart form field 'files'", param="files")
    names = [safe_filename(f.filename) for f in files]
    if len(set(names)) != len(names):
        raise APIError(400, "two uploaded files have the same name", param="files")
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    datas = []
    for f, fname in zip(files, names):  # every file is checked before any is written
        target = (folder / fname).resolve()
        if target.parent != root:  # belt and braces: never outside the uploads folder
            raise APIError(400, f"invalid file name {f.filename!r}", param="files")
        data = await f.read()
        if not data:
            raise APIError(400, f"file {f.filename!r} is empty", param="files")
        datas.append((target, data))
    saved = []
    for target, data in datas:
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        tmp.write_bytes(data)
        tmp.replace(target)  # atomic: a half-written upload never replaces a good file
        saved.append(target)
    job_id = uuid.uuid4().hex[:12]
    job: dict[str, Any] = {"id": job_id, "collection": name, "status": "queued", "files": len(saved),
                           "files_done": 0, "chunks": 0, "embedded": 0, "failed": [], "report": None,
                           "error": None, "created": time.time()}
    gs.add_job(job)
    lock = threading.Lock()

    def progress(event: str, data: dict) -> None:
        with lock:
            if event == "file":
                job["files_done"] += 1
                job["chunks"] += data.get("chunks", 0) or 0
                if data.get("status") == "failed":
                    job["failed"].append({"file": Path(data.get("path", "")).name, "reason": data.get("reason")})
            elif event == "embedded":
                job["embedded"] += data.get("chunks", 0)

    def work():
        from ..ingestion import ingest

        job["status"] = "running"
        try:
            emb = gs.engine.collection_embedder(name, missing_ok=True)
            report = ingest(saved, name, settings=gs.settings, embedder=emb, progress=progress)
            job["report"] = {k: v for k, v in report.to_dict().items() if k != "failed"}
            job["status"] = "done" if report.ok else "failed"
            if not report.ok:
                job["error"] = "; ".join(f"{Path(p).name}: {r}" for p, r in report.failed)
                for p, _ in report.failed:  # a file that could not be ingested is not kept
                    Path(p).unlink(missing_ok=True)
        except Exception as exc:
            job["status"], job["error"] = "failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        finally:
            gs.engine.forget_collection(name)
            job["finished"] = time.time()

    _ingest_pool.submit(work)
    return JSONResponse({"job": job_id, "collection": name, "files": [p.name for p in saved],
                         "status_url": f"/api/jobs/{job_id}"}, status_code=202)


@router.get("/jobs/{job_id}")
async def job_status(job_id: str, request: Request):
    gs = _gs(request)
    gs.authorize(request)
    job = gs.jobs.get(job_id)
    if job is None or not gs.may_use(request, job["collection"]):
        raise APIError(404, f"no ingest job {job_id!r}", code="job_not_found")
    return job


@router.post("/feedback", status_code=201)
async def feedback(request: Request):
    """Thumbs up (1) or down (-1) on an answer; stored with its prompt and answer."""
    gs = _gs(request)
    gs.authorize(request)
    body = await _json(request)
    rating = body.get("rating")
    if rating not in (1, -1) or isinstance(rating, bool):
        raise APIError(400, "rating must be 1 (thumbs up) or -1 (thumbs down)", param="rating")
    rid = body.get("request_id")
    comment = body.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > 2000:
        raise APIError(400, "comment must be a string of at most 2000 characters", param="comment")
    logged = gs.logdb.get_request(rid) if isinstance(rid, str) and rid else None
    if logged is not None and isinstance(logged.get("request"), dict):
        req = logged["request"]
        messages = req.get("messages") or [{"role": "user", "content": str(req.get("prompt", ""))}]
        answer, model = logged.get("response") or "", logged.get("model")
    else:  # the log is off or the id is unknown: take what the client sent
        from .openai_api import parse_messages

        messages = [m.to_dict() for m in parse_messages(body.get("messages"))]
        answer, model = body.get("answer"), body.get("model")
        if not isinstance(answer, str):
            raise APIError(400, "answer must be a string (the request id is not in the log)", param="answer")
    gs.logdb.add_feedback(request_id=rid if isinstance(rid, str) else None, rating=rating, messages=messages,
                          answer=answer, model=model if isinstance(model, str) else None, comment=comment)
    return {"stored": True, "request_id": rid, "rating": rating}
