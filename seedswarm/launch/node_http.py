"""What a node serves over HTTP: Prometheus metrics, health and readiness, a validator's
dashboard.

    metrics_port    /metrics (Prometheus text), /healthz, /readyz
    dashboard_port  validators: / (the page), /api/dashboard (its data as JSON), its assets

Both are off at 0 (seedswarm.launch.settings); one port for both serves everything on one
server. The servers open first thing, before the genesis model is fetched or the log replayed,
so a port in use fails at once with one line, and probes get an answer while the node starts:
/healthz is 200 as long as the process answers, /readyz 503 until the node is caught up with
the certified history (the same test that lets it work on a round). The chain (stakes,
rewards) is read in a thread, never while a page is being answered: once at start, then once
per round on a validator serving a dashboard, and elsewhere only while someone looks (a scrape
asks for a fresh read, at most one per round), so a node nobody watches puts no load on the
chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from adapters.storage.keystore import KeyBundle
from node.service.miner import MinerService
from runtime.http_server import HttpRequest, HttpResponse, HttpServer, Route
from seedswarm.launch.chain_view import ChainView
from seedswarm.launch.node_metrics import NodeCollector, registry
from seedswarm.launch.node_plan import NodePlan
from validator.service.validator import ValidatorService

_log = logging.getLogger("seedswarm.launch.node_http")

Service = MinerService | ValidatorService


class NodePages:
    """The HTTP side of one node; `attach` the service once it is built."""

    def __init__(self, plan: NodePlan, keys: KeyBundle) -> None:
        self.plan = plan
        self.keys = keys
        self.service: Service | None = None
        self.chain: ChainView | None = None
        self.collector: NodeCollector | None = None
        self.servers: list[HttpServer] = []
        self.stage = "starting"
        """What the node is doing before its service runs (what /readyz says)."""
        self._wanted = asyncio.Event()
        """Set by a scrape or a page view: the chain view should be read again."""

    @property
    def enabled(self) -> bool:
        s = self.plan.settings
        return bool(s.metrics_port or s.dashboard_port)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[NodePages]:
        """Listen on the configured ports for as long as the block runs."""
        s = self.plan.settings
        timeout = max(1.0, self.plan.network.round_length / 2)
        ports: dict[int, dict[str, Route]] = {}
        names: dict[int, list[str]] = {}
        if s.metrics_port:
            ports.setdefault(s.metrics_port, {}).update(self._probe_routes())
            names.setdefault(s.metrics_port, []).append("metrics_port")
        if s.dashboard_port:
            ports.setdefault(s.dashboard_port, {}).update(self._dashboard_routes())
            ports[s.dashboard_port].setdefault("/healthz", self._healthz)
            names.setdefault(s.dashboard_port, []).append("dashboard_port")
        try:
            for port, routes in ports.items():
                setting = " / ".join(names[port])
                what = "dashboard" if "/" in routes and "/metrics" not in routes else (
                    "metrics and dashboard" if "/" in routes else "metrics endpoint")
                server = HttpServer(routes, name=what, read_timeout_s=timeout,
                                    setting=f"{setting}, SEEDSWARM_{names[port][0].upper()}")
                self.servers.append(await server.start(s.http_host, port))
            yield self
        finally:
            for server in self.servers:
                await server.close()
            self.servers.clear()

    def attach(self, service: Service) -> None:
        """The node's service is built: serve its state from now on."""
        self.service = service
        self.stage = "running"
        self.collector = NodeCollector(service, self.plan.network.network_id, self.chain,
                                       self.keys.evm_address)

    async def watch_chain(self) -> None:
        """Read the chain at start, then every round with a dashboard, else when a scrape
        asks (at most once per round), for as long as the node runs (nothing to do when no
        page is served)."""
        if not self.enabled:
            return
        self.chain = await asyncio.to_thread(self._connect_chain)
        if self.chain is None:
            return
        if self.collector is not None:
            self.collector.chain = self.chain
        dashboard = bool(self.plan.settings.dashboard_port)
        while True:
            self._wanted.clear()
            await asyncio.to_thread(self.chain.refresh)
            await asyncio.sleep(self.plan.network.round_length)
            if not dashboard:
                await self._wanted.wait()

    def _connect_chain(self) -> ChainView | None:
        from adapters.chain.backends import connect
        from adapters.chain.client import ChainClient

        try:
            client = ChainClient.connect(connect(self.plan.chain_url), self.plan.deployment,
                                         self.keys.evm_account)
        except Exception as exc:  # the pages work without the chain; they say so
            _log.warning("pages: no chain view (%s: %s); stakes and rewards not shown",
                         type(exc).__name__, exc)
            return None
        return ChainView(client, self.plan.bundle.chain.deployment_block)

    # -- routes ---------------------------------------------------------------------------

    def _probe_routes(self) -> dict[str, Route]:
        return {"/metrics": self._metrics, "/healthz": self._healthz, "/readyz": self._readyz}

    def _dashboard_routes(self) -> dict[str, Route]:
        return {"/": self._page, "/api/dashboard": self._api, "/dashboard.css": self._asset,
                "/dashboard.js": self._asset}

    async def _healthz(self, request: HttpRequest) -> HttpResponse:
        service = self.service
        where = self.stage if service is None else f"round {service.follower.replica.round_index}"
        return HttpResponse.text(200, f"ok: {where}")

    async def _readyz(self, request: HttpRequest) -> HttpResponse:
        service = self.service
        if service is None:
            return HttpResponse.text(503, f"not ready: {self.stage}")
        at = service.follower.replica.round_index
        clock = service.clock.phase(service.now()).round_index
        if service.ready():
            return HttpResponse.text(200, f"ready: round {at} (clock round {clock})")
        return HttpResponse.text(503, f"not ready: replica at round {at}, clock at round "
                                      f"{clock}: catching up with the certified history")

    async def _metrics(self, request: HttpRequest) -> HttpResponse:
        self._wanted.set()
        if self.collector is None:
            body = (f"# seedswarm node {self.stage}\nseedswarm_ready 0\n").encode()
            return HttpResponse(200, body, CONTENT_TYPE_LATEST)
        return HttpResponse(200, generate_latest(registry(self.collector)), CONTENT_TYPE_LATEST)

    def _data(self) -> dict[str, Any] | None:
        from seedswarm.launch.dashboard import dashboard_data

        if not isinstance(self.service, ValidatorService):
            return None
        self._wanted.set()
        return dashboard_data(self.service, self.chain)

    async def _page(self, request: HttpRequest) -> HttpResponse:
        from seedswarm.launch.dashboard_page import render_main, render_page

        data = self._data()
        if data is None:
            return HttpResponse.text(503, f"the validator is {self.stage}; reload in a moment")
        html = render_main(data) if request.query.get("part") == "main" else render_page(data)
        return HttpResponse(200, html.encode(), "text/html; charset=utf-8")

    async def _api(self, request: HttpRequest) -> HttpResponse:
        data = self._data()
        if data is None:
            return HttpResponse.text(503, f"the validator is {self.stage}")
        return HttpResponse(200, json.dumps(data, sort_keys=True).encode(), "application/json")

    async def _asset(self, request: HttpRequest) -> HttpResponse:
        from seedswarm.launch.dashboard_page import asset

        name = request.path.lstrip("/")
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return HttpResponse(200, asset(name), f"{kind}; charset=utf-8")
