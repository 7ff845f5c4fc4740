import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';

export const ECHO_PROTO_PATH = join(__dirname, '..', '..', 'protos', 'echo.proto');

export interface EchoRequest { message?: string }
export interface StreamRequest { message?: string; count?: number }
export interface EchoReply { message: string; server: string; index: number }

/** The generated client class for grpc_etcd_lb.echo.Echo. */
export interface EchoClient extends grpc.Client {
  unary(req: EchoRequest, callback: grpc.requestCallback<EchoReply>): grpc.ClientUnaryCall;
  unary(req: EchoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<EchoReply>): grpc.ClientUnaryCall;
  unary(req: EchoRequest, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>, callback: grpc.requestCallback<EchoReply>): grpc.ClientUnaryCall;
  serverStream(req: StreamRequest, metadata?: grpc.Metadata, options?: Partial<grpc.CallOptions>): grpc.ClientReadableStream<EchoReply>;
}
export type EchoClientConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => EchoClient;

let cached: { service: grpc.ServiceDefinition; Client: EchoClientConstructor } | undefined;

/** Loads protos/echo.proto once. */
export function loadEcho(): { service: grpc.ServiceDefinition; Client: EchoClientConstructor } {
  if (!cached) {
    const def = protoLoader.loadSync(ECHO_PROTO_PATH, { keepCase: false, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc_etcd_lb: { echo: { Echo: grpc.ServiceClientConstructor } };
    };
    const ctor = pkg.grpc_etcd_lb.echo.Echo;
    cached = { service: ctor.service, Client: ctor as unknown as EchoClientConstructor };
  }
  return cached;
}

/** Promise wrapper around one unary call. */
export function unary(client: EchoClient, message = 'hi', options: Partial<grpc.CallOptions> = {}, metadata = new grpc.Metadata()): Promise<EchoReply> {
  return new Promise((resolve, reject) => {
    client.unary({ message }, metadata, options, (err, reply) => (err ? reject(err) : resolve(reply as EchoReply)));
  });
}
