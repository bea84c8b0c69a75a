"""Personal data: kept out of the hashed history as keyed commitments, erased on request
or after a retention period while every chain, checkpoint and report stays valid."""
