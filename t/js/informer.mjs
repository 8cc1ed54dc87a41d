// informer.mjs: a stock @kubernetes/client-node informer (ListWatch) on the
// pods of one namespace, printing what it sees, a line each, for
// t/35-api-informer.t:
//   CONNECT           a list or watch begins
//   ADD name          UPDATE name {labels}          DELETE name
//   ERROR text        (then it starts again after a pause, as an app would)
// Usage: node informer.mjs KUBECONFIG NAMESPACE WATCH_TIMEOUT_SECONDS
//        node informer.mjs --check      (exits 0 if the client loads here)
import * as k8s from '@kubernetes/client-node';

if (process.argv[2] === '--check') {
    process.exit(typeof k8s.ListWatch === 'function' ? 0 : 1);
}
const [kubeconfig, ns, timeout] = process.argv.slice(2);
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const api = kc.makeApiClient(k8s.CoreV1Api);
const watch = new k8s.Watch(kc);
// The stock Watch, asking the server to end each watch after timeout
// seconds, as client-go's reflector does: a server-closed watch.
const timed = {
    watch: (path, params, cb, done) =>
        watch.watch(path, { ...params, timeoutSeconds: Number(timeout) }, cb, done),
};
const inf = new k8s.ListWatch(`/api/v1/namespaces/${ns}/pods`, timed,
    () => api.listNamespacedPod({ namespace: ns }), false);
const out = (s) => process.stdout.write(s + '\n');
inf.on(k8s.CONNECT, () => out('CONNECT'));
inf.on(k8s.ADD, (p) => out(`ADD ${p.metadata.name}`));
inf.on(k8s.UPDATE, (p) => out(`UPDATE ${p.metadata.name} ${JSON.stringify(p.metadata.labels || {})}`));
inf.on(k8s.DELETE, (p) => out(`DELETE ${p.metadata.name}`));
inf.on(k8s.ERROR, (e) => {
    out(`ERROR ${e}`);
    setTimeout(() => inf.start(), 500);
});
inf.start();
