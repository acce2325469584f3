"""The offline side: labels, ranking maths, training and evaluation of the judge, the retriever and the
rewriter, and their plots. It may import the serving side's domain code; the serving side (the gRPC
services, the pipeline, gateway, worker and store) never imports from here."""
