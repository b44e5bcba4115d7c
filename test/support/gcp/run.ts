// Cloud Run Admin API v2 (run.googleapis.com/v2): services get/list/create/delete, long-running operations, and the
// service IAM policy that decides who may invoke it through the front end.
import { randomUUID } from 'node:crypto';
import { type Call, GoogleApiError, invalidArgument, notFound, policyJson, type Route, route } from './http.ts';
import { setIamPolicy } from './iam.ts';
import type { GcpState, Ingress, Operation, RunService } from './state.ts';

const SEG = '([^/:]+)';
const SERVICE_TYPE = 'type.googleapis.com/google.cloud.run.v2.Service';
const INGRESS: readonly Ingress[] = [
  'INGRESS_TRAFFIC_ALL',
  'INGRESS_TRAFFIC_INTERNAL_ONLY',
  'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER',
];
// With numeric enum encoding (what the REST transport of the client libraries asks for) ingress arrives as a number.
const INGRESS_NUMBERS: Readonly<Record<number, Ingress>> = {
  1: 'INGRESS_TRAFFIC_ALL',
  2: 'INGRESS_TRAFFIC_INTERNAL_ONLY',
  3: 'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER',
};

function revision(service: RunService): string {
  return `${service.name}-${String(service.generation).padStart(5, '0')}-${service.uid.slice(0, 3)}`;
}

export function serviceJson(state: GcpState, service: RunService) {
  const name = state.runServiceName(service);
  const revisionName = `projects/${service.projectId}/locations/${service.region}/revisions/${revision(service)}`;
  const urls = state.runServiceUrls(service);
  const ready = {
    type: 'Ready',
    state: 'CONDITION_SUCCEEDED',
    lastTransitionTime: service.updateTime,
  };
  return {
    name,
    uid: service.uid,
    generation: String(service.generation),
    ...(Object.keys(service.labels).length > 0 ? { labels: service.labels } : {}),
    ...(Object.keys(service.annotations).length > 0 ? { annotations: service.annotations } : {}),
    createTime: service.createTime,
    updateTime: service.updateTime,
    creator: service.creator,
    lastModifier: service.creator,
    ingress: service.ingress,
    launchStage: 'GA',
    template: {
      serviceAccount: service.serviceAccount,
      containers: [
        {
          image: service.image,
          ports: [{ name: service.http2 ? 'h2c' : 'http1', containerPort: service.containerPort }],
        },
      ],
      maxInstanceRequestConcurrency: 80,
      timeout: '300s',
      executionEnvironment: 'EXECUTION_ENVIRONMENT_GEN2',
    },
    traffic: [{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', percent: 100 }],
    observedGeneration: String(service.generation),
    terminalCondition: ready,
    conditions: [
      { type: 'RoutesReady', state: 'CONDITION_SUCCEEDED', lastTransitionTime: service.updateTime },
      { type: 'ConfigurationsReady', state: 'CONDITION_SUCCEEDED', lastTransitionTime: service.updateTime },
    ],
    latestReadyRevision: revisionName,
    latestCreatedRevision: revisionName,
    trafficStatuses: [{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', percent: 100 }],
    uri: urls[0],
    ...(service.invokerIamDisabled ? { invokerIamDisabled: true } : {}),
    urls,
    ...(service.customAudiences.length > 0 ? { customAudiences: service.customAudiences } : {}),
    reconciling: false,
    etag: `"${service.etag}"`,
  };
}

function resolve(state: GcpState, call: Call, permission: string) {
  const [p = '', region = '', name = ''] = call.params;
  const projectId = state.project(p)?.projectId ?? p;
  const key = `projects/${projectId}/locations/${region}/services/${name}`;
  call.authorize(permission, [key, `projects/${projectId}`], `namespaces/${p}/services/${name}`);
  const service = state.runServices.get(key);
  if (!service) {
    throw notFound(`Resource '${name}' of kind 'SERVICE' in region '${region}' in project '${p}' does not exist.`);
  }
  return { service, key };
}

function operation(state: GcpState, service: RunService, response: Record<string, unknown>): Operation {
  const op: Operation = {
    name: `projects/${service.projectId}/locations/${service.region}/operations/${randomUUID()}`,
    done: true,
    metadata: { '@type': SERVICE_TYPE, ...response },
    response: { '@type': SERVICE_TYPE, ...response },
  };
  state.operations.set(op.name, op);
  return op;
}

interface ServiceBody {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ingress?: Ingress | number;
  invokerIamDisabled?: boolean;
  customAudiences?: string[];
  template?: {
    serviceAccount?: string;
    containers?: { image?: string; ports?: { name?: string; containerPort?: number }[] }[];
  };
}

export function runRoutes(state: GcpState): Route[] {
  return [
    route('GET', new RegExp(`^/v2/projects/${SEG}/locations/${SEG}/services$`), (call) => {
      const [p = '', region = '-'] = call.params;
      const projectId = state.project(p)?.projectId ?? p;
      call.authorize('run.services.list', [`projects/${projectId}`], `namespaces/${p}`);
      const services = [...state.runServices.values()].filter(
        (s) => s.projectId === projectId && (region === '-' || s.region === region),
      );
      return services.length > 0 ? { services: services.map((s) => serviceJson(state, s)) } : {};
    }),
    route('GET', new RegExp(`^/v2/projects/${SEG}/locations/${SEG}/services/${SEG}$`), (call) =>
      serviceJson(state, resolve(state, call, 'run.services.get').service),
    ),
    route('POST', new RegExp(`^/v2/projects/${SEG}/locations/${SEG}/services$`), (call) => {
      const [p = '', region = ''] = call.params;
      const project = state.project(p);
      const projectId = project?.projectId ?? p;
      const claims = call.authorize('run.services.create', [`projects/${projectId}`], `namespaces/${p}`);
      if (!project) throw notFound(`Project '${p}' does not exist.`);
      const name = call.query.get('serviceId') ?? '';
      if (!/^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$/.test(name)) {
        throw invalidArgument(`service_id must match pattern [a-z]([-a-z0-9]{0,47}[a-z0-9])?, got '${name}'`);
      }
      if (state.runServices.has(`projects/${projectId}/locations/${region}/services/${name}`)) {
        throw new GoogleApiError('ALREADY_EXISTS', `Resource '${name}' already exists.`);
      }
      const body = call.body as ServiceBody;
      const container = body.template?.containers?.[0];
      if (!container?.image) throw invalidArgument('spec.template.spec.containers[0].image: Required');
      const ingress = typeof body.ingress === 'number' ? INGRESS_NUMBERS[body.ingress] : body.ingress;
      if (ingress !== undefined && !INGRESS.includes(ingress)) throw invalidArgument(`Invalid ingress ${body.ingress}`);
      const service = state.addRunService({
        projectId,
        region,
        name,
        image: container.image,
        http2: container.ports?.[0]?.name === 'h2c',
        ...(ingress ? { ingress } : {}),
        ...(body.template?.serviceAccount ? { serviceAccount: body.template.serviceAccount } : {}),
        labels: body.labels ?? {},
        annotations: body.annotations ?? {},
        customAudiences: body.customAudiences ?? [],
      });
      service.invokerIamDisabled = body.invokerIamDisabled === true;
      service.containerPort = container.ports?.[0]?.containerPort ?? 8080;
      service.creator = claims.email ?? claims.member;
      return operation(state, service, serviceJson(state, service));
    }),
    route('DELETE', new RegExp(`^/v2/projects/${SEG}/locations/${SEG}/services/${SEG}$`), (call) => {
      const { service, key } = resolve(state, call, 'run.services.delete');
      state.runServices.delete(key);
      state.policies.delete(key);
      return operation(state, service, serviceJson(state, service));
    }),
    route('GET', new RegExp(`^/v2/projects/${SEG}/locations/${SEG}/operations/${SEG}$`), (call) => {
      const [p = '', region = '', id = ''] = call.params;
      const projectId = state.project(p)?.projectId ?? p;
      call.authorize('run.operations.get', [`projects/${projectId}`]);
      const op = state.operations.get(`projects/${projectId}/locations/${region}/operations/${id}`);
      if (!op) throw notFound(`Operation '${id}' not found.`);
      return op;
    }),
    route('GET', new RegExp(`^/v2/projects/${SEG}/locations/${SEG}/services/${SEG}:getIamPolicy$`), (call) =>
      policyJson(state.getPolicy(resolve(state, call, 'run.services.getIamPolicy').key)),
    ),
    route('POST', new RegExp(`^/v2/projects/${SEG}/locations/${SEG}/services/${SEG}:setIamPolicy$`), (call) =>
      setIamPolicy(state, resolve(state, call, 'run.services.setIamPolicy').key, call.body),
    ),
    route('POST', new RegExp(`^/v2/projects/${SEG}/locations/${SEG}/services/${SEG}:testIamPermissions$`), (call) => {
      const [p = '', region = '', name = ''] = call.params;
      const claims = call.caller();
      const projectId = state.project(p)?.projectId ?? p;
      const key = `projects/${projectId}/locations/${region}/services/${name}`;
      const asked = (call.body.permissions as string[] | undefined) ?? [];
      const held = asked.filter((perm) => state.allows(claims.member, perm, [key, `projects/${projectId}`]));
      return held.length > 0 ? { permissions: held } : {};
    }),
  ];
}
