"""A server that answers every SOAP 1.2 POST with one fixed, valid reply: a login gets a session
ID, anything else the reply of a SendMessage to one number. It does no work of its own, so a
client measured against it is measured alone (the sandbox checks every request and can be the
bottleneck). ``python -m benchmarks.fixed_server`` prints its URL and serves until its standard
input closes."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

ENVELOPE = (
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
    'xmlns:soap="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body>{}</soap:Body></soap:Envelope>'
)
LOGIN = ENVELOPE.format(
    '<GetSessionIDResponse xmlns="http://ws.devinosms.com">'
    "<GetSessionIDResult>Z5CYSZEKDL1DPICU37WEHQVOYKP0T1GSLHX1</GetSessionIDResult>"
    "</GetSessionIDResponse>"
).encode()
SENT = ENVELOPE.format(
    '<SendMessageResponse xmlns="http://ws.devinosms.com"><SendMessageResult>'
    "<string>579700854169272358</string></SendMessageResult></SendMessageResponse>"
).encode()
HEADERS = {"Content-Type": "application/soap+xml; charset=utf-8"}


async def answer(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(body=LOGIN if b"GetSessionID" in body else SENT, headers=HEADERS)


async def serve() -> None:
    app = web.Application()
    app.router.add_post("/SmsService.asmx", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}/SmsService.asmx", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
