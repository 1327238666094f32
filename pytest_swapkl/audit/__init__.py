"""One audit from its settings to its document: the run (`runner`), the document and its checks (`results`), the
sharded run and the merge (`sharding`), saved baselines (`baselines`) and the checkpoint's content fingerprint
(`fingerprint`). Orchestration shared by both faces (the `swapkl` commands and the plugin); imports the engine,
inputs and analysis, never the faces.
"""
