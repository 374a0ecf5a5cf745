"""Who is calling: client and worker tokens, worker message signatures."""
