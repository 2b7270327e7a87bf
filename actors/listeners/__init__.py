"""Who hears about membership: the listener registry (actor subscribers and callbacks), the
callback runner, the load balancer, the Hazelcast-style ``ClusterService`` facade, lifecycle
listeners and the event recorder.
"""

__all__: list[str] = []
