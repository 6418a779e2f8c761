"""Reading games: a local web viewer (`haggler view`) and a static HTML report of a run.

server = make_server("haggler.db", port=8765)   # 127.0.0.1 only
server.serve_forever()
write_report(store, run_id, "run.html")         # one file, opens from disk
"""

from haggler.view.report import write_report
from haggler.view.server import ViewerServer, make_server

__all__ = ["ViewerServer", "make_server", "write_report"]
