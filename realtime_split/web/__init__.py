"""``realtime-split ui``: a local web app over the library, a thin front end like the command line.

- ``app.py``: the Starlette routes (the page, uploads, downloads, the live session's controls) and the one
  WebSocket that pushes every job's progress and the live session's readings to the page 20 times a second.
- ``jobs.py``: the queue of files, one at a time through ``Separator.separate_file`` (one model in memory).
- ``live.py``: the one ``LiveSession`` the page starts, stops and mixes, and its latest readings.
- ``security.py``: the token every request carries, the Host and Origin checks, the upload size limit.
- ``static/``: the page (hand-written HTML, CSS and JavaScript, served from the package: no CDN, no build).

Needs the ``ui`` extra (``pip install "realtime-split[ui]"``: Starlette, uvicorn, python-multipart, websockets);
nothing outside this folder and ``cli_ui.py`` imports it. No separation happens here: every stem comes from
``Separator`` or ``LiveSession``.
"""
