"""rollout-gate's sandbox: stand-ins for the outside world on one loopback port (the
Cloudflare Workers versions/deployments API, the Analytics Engine SQL API executed by
chdb over a traffic model, Slack, target Workers' /healthz and the asset host), driven
by a control API under /_sandbox/ and a clock the test harness sets. See README.md."""

__all__ = ["__version__"]
__version__ = "0.1.0"
