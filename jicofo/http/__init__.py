"""HTTP on h11 and trio, shared by the REST API and the simulators' control APIs."""
