// Fixed inputs of the Traffic Director bootstraps (gRPC and Envoy) for their snapshot tests.
export const TD_NODE = {
  serverUri: 'trafficdirector.googleapis.com:443',
  projectNumber: '123456789012',
  network: 'scope:edge',
  nodeId: '52fdfc07-2182-454f-963f-5f0f9a621d72~10.9.8.7',
  zone: 'us-central1-c',
};
