"""Deployment: the stages a session calls as ONNX graphs (:mod:`.graphs`) and the runtimes that run them in
place of torch eager (:mod:`.backends`). docs/deploy.md is the guide."""
from reusegate.deploy.backends import BACKENDS, use_backend
from reusegate.deploy.graphs import GRAPH_FORMAT, OPSET, GraphStage, model_stages, read_graphs, write_graphs

__all__ = ["BACKENDS", "use_backend", "GRAPH_FORMAT", "OPSET", "GraphStage", "model_stages", "read_graphs",
           "write_graphs"]
