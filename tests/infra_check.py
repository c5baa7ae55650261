"""Renders the CloudFormation templates under infra/ for a demo deployment and checks
what a reviewer would check by hand (issue #17): who may reach a search cluster, what
each role may touch, and that the two search backends deploy the shapes they promise.

The main stack (infra/template.yaml) is rendered as `cloudpf-dev` with each backend, and
the search cluster stack (infra/search-cluster.yaml) for the demo shop `alpine-outfitters`
on top of it: parameters, conditions and intrinsic functions are resolved here, imports
from the main stack's exports, resources to symbolic names (`<stack>/<LogicalId>`). The
templates are read with cfn-lint's own parser (already installed for the lint step).

Usage: python tests/infra_check.py   (from the repository root; exits 1 on a failure)
"""

import fnmatch
import re
import sys

from cfnlint.decode import decode

ACCOUNT = "123456789012"
REGION = "us-east-1"
NO_VALUE = object()

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def load(path):
    template, errors = decode(path)
    if errors or template is None:
        sys.exit(f"{path}: cannot parse: {errors}")
    return template


class Stack:
    """One template rendered with parameters, and the exports of stacks below it."""

    def __init__(self, name, template, parameters, imports=None):
        self.name = name
        self.t = template
        self.params = {}
        for key, spec in template.get("Parameters", {}).items():
            if key in parameters:
                self.params[key] = parameters[key]
            elif "Default" in spec:
                self.params[key] = spec["Default"]
            else:
                raise SystemExit(f"{name}: parameter {key} needs a value")
        self.imports = imports or {}
        self.conditions = {}
        for key, expr in template.get("Conditions", {}).items():
            self.conditions[key] = self.resolve(expr)
        self.resources = {
            key: self.resolve(res)
            for key, res in template["Resources"].items()
            if "Condition" not in res or self.conditions[res["Condition"]]
        }
        self.outputs = {
            key: self.resolve(out)
            for key, out in template.get("Outputs", {}).items()
            if "Condition" not in out or self.conditions[out["Condition"]]
        }
        self.exports = {
            out["Export"]["Name"]: out["Value"]
            for out in self.outputs.values()
            if "Export" in out
        }

    def ref(self, name):
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": self.name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.t["Resources"]:
            return f"{self.name}/{name}"
        raise KeyError(f"{self.name}: Ref to unknown {name}")

    def get_att(self, name, attr):
        if name not in self.t["Resources"]:
            raise KeyError(f"{self.name}: GetAtt of unknown {name}")
        if attr == "Arn" and self.t["Resources"][name]["Type"] == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{self.name}/{name}"
        return f"{self.name}/{name}.{attr}"

    def sub(self, text, extra):
        def one(m):
            key = m.group(1)
            if key in extra:
                return str(extra[key])
            if "." in key and key.split(".")[0] in self.t["Resources"]:
                return str(self.get_att(*key.split(".", 1)))
            return str(self.ref(key))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            items = [self.resolve(n) for n in node]
            return [i for i in items if i is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attr)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    text, extra = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
                else:
                    text, extra = arg, {}
                return self.sub(text, extra)
            if key == "Fn::Join":
                return arg[0].join(str(x) for x in self.resolve(arg[1]))
            if key == "Fn::Split":
                return self.resolve(arg[1]).split(arg[0])
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::FindInMap":
                m, a, b = (self.resolve(x) for x in arg)
                return self.t["Mappings"][m][str(a)][b]
            if key == "Fn::ImportValue":
                return self.imports[self.resolve(arg)]
            if key == "Fn::If":
                return self.resolve(arg[1] if self.conditions[arg[0]] else arg[2])
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Condition":
                return self.conditions[arg]
        out = {}
        for k, v in node.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def props(self, name):
        return self.resources[name].get("Properties", {})


def as_list(x):
    return x if isinstance(x, list) else [x]


def grants(role):
    """(action, resource, condition) of every Allow statement of a role's inline policies."""
    out = []
    for policy in role["Properties"].get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            if st["Effect"] != "Allow":
                continue
            for action in as_list(st["Action"]):
                for resource in as_list(st["Resource"]):
                    out.append((action, resource, st.get("Condition")))
    return out


def main():
    main_t = load("infra/template.yaml")
    cluster_t = load("infra/search-cluster.yaml")
    base = {
        "Environment": "dev",
        "VpcId": "vpc-0123456789abcdef0",
        "SubnetIds": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
    }
    es = Stack("cloudpf-dev", main_t, {**base, "SearchBackend": "elasticsearch"})
    emb = Stack("cloudpf-dev", main_t, {**base, "SearchBackend": "embedded"})
    tenant = "alpine-outfitters"
    TLS_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cloudpf/dev/es-tls/{tenant}-AbCdEf"
    cl = Stack(
        f"cloudpf-dev-search-{tenant}",
        cluster_t,
        {"MainStack": "cloudpf-dev", "ClusterName": tenant, "TlsSecretArn": TLS_ARN},
        imports=es.exports,
    )

    print("== main stack, elasticsearch backend")
    for fn in ["ProductsCdcFunction", "PurchasesCdcFunction"]:
        p = es.props(fn)
        stream = p["Events"]["Stream"]["Properties"]
        check("ReservedConcurrentExecutions" not in p, f"{fn}: no reserved concurrency of 1")
        check(stream["ParallelizationFactor"] == 2, f"{fn}: ParallelizationFactor from its parameter")
        check(stream["BisectBatchOnFunctionError"] is True
              and stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
              and "OnFailure" in stream["DestinationConfig"],
              f"{fn}: bisect, partial batch failures and an on-failure destination")
        check("FileSystemConfigs" not in p, f"{fn}: no EFS mount")
        env = p["Environment"]["Variables"]
        check(env["CLOUDPF_SEARCH_BACKEND"] == "elasticsearch"
              and env["CLOUDPF_TENANTS_FILE"] == "s3://cloudpf-dev/LakeBucket/config/tenants.toml",
              f"{fn}: elasticsearch backend, tenants file in the lake bucket")
    for fn in ["ProductsCdcFunction", "PurchasesCdcFunction"]:
        alarms = [
            r for r in es.resources.values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
            and r["Properties"]["MetricName"] == "IteratorAge"
            and {"Name": "FunctionName", "Value": f"cloudpf-dev/{fn}"} in r["Properties"]["Dimensions"]
        ]
        check(len(alarms) == 1, f"{fn}: an IteratorAge alarm")
    check(not any(r["Type"].startswith("AWS::EFS::") for r in es.resources.values()),
          "no EFS file system for the indexes")

    print("== main stack, embedded backend (the small-deployment option)")
    for fn in ["ProductsCdcFunction", "PurchasesCdcFunction"]:
        p = emb.props(fn)
        check(p.get("ReservedConcurrentExecutions") == 1, f"{fn}: one writer (reserved concurrency 1)")
        check(p["Events"]["Stream"]["Properties"]["ParallelizationFactor"] == 1, f"{fn}: one batch per shard")
        check(p["FileSystemConfigs"][0]["LocalMountPath"] == "/mnt/index", f"{fn}: indexes on EFS")
    check("SearchClusterSecurityGroup" not in emb.resources and "SnapshotBucket" not in emb.resources,
          "no search cluster resources")
    check(not any(a.startswith("secretsmanager:") for a, _, _ in grants(emb.resources["ProductsCdcRole"])),
          "the CDC role reads no cluster credentials")

    print("== who may reach a search cluster")
    fsg = "cloudpf-dev/FunctionSecurityGroup"
    shared_sg = es.props("SearchClusterSecurityGroup")
    check(shared_sg["SecurityGroupIngress"] == [{
        "Description": shared_sg["SecurityGroupIngress"][0]["Description"],
        "IpProtocol": "tcp", "FromPort": 9200, "ToPort": 9200, "SourceSecurityGroupId": fsg}],
        "port 9200 only, only from the cloudpf functions' group")
    service = cl.props("Service")["NetworkConfiguration"]["AwsvpcConfiguration"]
    check(service["AssignPublicIp"] == "DISABLED", "the node has no public address")
    check(service["Subnets"] == base["SubnetIds"], "the node runs in the deployment's private subnets")
    check(service["SecurityGroups"] == ["cloudpf-dev/SearchClusterSecurityGroup", f"{cl.name}/NodeSecurityGroup"],
          "the node's groups: the shared 9200 rule and its own outbound rules")
    check("SecurityGroupIngress" not in cl.props("NodeSecurityGroup"), "the node's own group admits nothing")
    data_in = cl.props("DataSecurityGroup")["SecurityGroupIngress"]
    check(data_in == [{"Description": data_in[0]["Description"], "IpProtocol": "tcp", "FromPort": 2049,
                       "ToPort": 2049, "SourceSecurityGroupId": f"{cl.name}/NodeSecurityGroup"}],
          "the data file system admits NFS from this cluster's node only")
    every = [r for s in (es, cl) for r in s.resources.values()]
    open_ingress = [
        rule for r in every if r["Type"] == "AWS::EC2::SecurityGroup"
        for rule in r["Properties"].get("SecurityGroupIngress", [])
        if "CidrIp" in rule or "CidrIpv6" in rule
    ]
    check(open_ingress == [], "no ingress rule by address range anywhere")

    print("== least privilege")
    secret_name = cl.outputs["CredentialsSecretName"]["Value"]
    check(secret_name == f"cloudpf/dev/es/{tenant}", "the cluster's secret is named cloudpf/<env>/es/<cluster>")
    for role in ["ProductsCdcRole", "PurchasesCdcRole", "SearchApiRole"]:
        g = grants(es.resources[role])
        secrets = {r for a, r, _ in g if a.startswith("secretsmanager:")}
        check({a for a, _, _ in g if a.startswith("secretsmanager:")} == {"secretsmanager:GetSecretValue"}
              and len(secrets) == 1, f"{role}: only GetSecretValue, on one pattern")
        pattern = next(iter(secrets))
        arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_name}-AbCdEf"
        check(fnmatch.fnmatchcase(arn, pattern), f"{role}: reaches the demo cluster's secret")
        for other in ["cloudpf/prod/es/alpine-outfitters", "rds/billing/master", f"cloudpf/dev/es-tls/{tenant}"]:
            check(not fnmatch.fnmatchcase(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{other}-AbCdEf", pattern),
                  f"{role}: does not reach the secret {other}")
        check(all("*" not in a for a, _, _ in g), f"{role}: no wildcard actions")
    for role, entity in [("ProductsCdcRole", "products"), ("PurchasesCdcRole", "purchases")]:
        g = grants(es.resources[role])
        lake = "arn:aws:s3:::cloudpf-dev/LakeBucket"
        check({r for a, r, _ in g if a == "s3:PutObject"} == {f"{lake}/lake/{entity}/*", f"{lake}/dlq/{entity}/*"},
              f"{role}: writes only its own lake and dead-letter prefixes")
        check({r for a, r, _ in g if a.startswith("s3:") and a not in ("s3:PutObject", "s3:ListBucket")}
              == {f"{lake}/config/tenants.toml"}, f"{role}: reads only the tenants file")
        check([(r, c) for a, r, c in g if a == "s3:ListBucket"]
              == [(lake, {"StringLike": {"s3:prefix": ["tenants/purged/*"]}})],
              f"{role}: lists only the purged shops' markers")
        check({r for a, r, _ in g if a.startswith("sqs:")} == {"cloudpf-dev/CdcFailureQueue.Arn"},
              f"{role}: sends only to its failure queue")
    api = grants(es.resources["SearchApiRole"])
    lake = "arn:aws:s3:::cloudpf-dev/LakeBucket"
    check({r for a, r, _ in api if a == "s3:PutObject"}
          == {f"{lake}/lake/search_events/*", "arn:aws:s3:::cloudpf-dev/AthenaResultsBucket/results/*"},
          "SearchApiRole: writes only the search log and its report results")
    check({r for a, r, _ in api if a == "s3:GetObject" and r.startswith(lake)}
          == {f"{lake}/config/tenants.toml", f"{lake}/lake/purchases/*", f"{lake}/lake/products/*",
              f"{lake}/lake/search_events/*"},
          "SearchApiRole: reads the tenants file and the lake tables only (no dead letters)")
    task = grants(cl.resources["TaskRole"])
    snap = "arn:aws:s3:::cloudpf-dev/SnapshotBucket"
    bucket_level = {"s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation"}
    objects = {r for a, r, _ in task if a.startswith("s3:") and a not in bucket_level}
    check(objects == {f"{snap}/{tenant}/*"}, "the node writes only its own snapshot prefix")
    check({r for a, r, _ in task if a in bucket_level} == {snap}, "bucket-level actions on the snapshot bucket only")
    listing = [c for a, _, c in task if a in ("s3:ListBucket", "s3:ListBucketMultipartUploads")]
    check(listing == [{"StringLike": {"s3:prefix": [f"{tenant}/*"]}}] * 2, "the node lists only its own prefix")
    exe = grants(cl.resources["ExecutionRole"])
    check({r for a, r, _ in exe if a.startswith("secretsmanager:")} == {f"{cl.name}/CredentialsSecret", TLS_ARN},
          "ECS reads only this cluster's password and TLS identity")
    for name in ["TaskRole", "ExecutionRole"]:
        check(all("*" not in a and r != "*" for a, r, _ in grants(cl.resources[name])),
              f"{name}: no wildcard actions or resources")
    container = cl.props("TaskDefinition")["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    check(env["xpack.security.enabled"] == "true", "Elasticsearch security (authentication) is on")
    check(container["Secrets"] == [
        {"Name": "ELASTIC_PASSWORD", "ValueFrom": f"{cl.name}/CredentialsSecret:password::"},
        {"Name": "ES_TLS_CERTIFICATE", "ValueFrom": f"{TLS_ARN}:certificate::"},
        {"Name": "ES_TLS_KEY", "ValueFrom": f"{TLS_ARN}:private_key::"},
        {"Name": "ES_TLS_CA", "ValueFrom": f"{TLS_ARN}:ca_certificate::"},
    ], "the password and the TLS identity reach the container from Secrets Manager, not from the template")
    check(env["xpack.security.http.ssl.enabled"] == "true"
          and env["xpack.security.http.ssl.certificate"] == "certs/node.crt"
          and env["xpack.security.http.ssl.key"] == "certs/node.key",
          "the node serves HTTPS with the provisioned certificate")
    script = container["Command"][0]
    check(container["EntryPoint"] == ["/bin/tini", "--", "/bin/bash", "-c"]
          and all(f'"${v}" > config/certs/{f}' in script for v, f in
                  [("ES_TLS_CERTIFICATE", "node.crt"), ("ES_TLS_KEY", "node.key"), ("ES_TLS_CA", "ca.crt")])
          and "umask 077" in script
          and script.rstrip().endswith("exec /usr/local/bin/docker-entrypoint.sh eswrapper"),
          "the container writes the identity's files (private to the node's user), then runs the image's entry point")
    health = container["HealthCheck"]["Command"][1]
    check("--cacert /usr/share/elasticsearch/config/certs/ca.crt" in health and "https://localhost:9200/" in health,
          "the health check speaks HTTPS and checks the certificate")
    check(cl.outputs["ClusterUrl"]["Value"] == f"https://{tenant}.es.cloudpf-dev.internal:9200",
          "the tenants file's url is the HTTPS address the certificate names")

    print("== parameters")
    pattern = cluster_t["Parameters"]["ClusterName"]["AllowedPattern"]
    for good in ["alpine-outfitters", "a", "1shop", "x" * 63]:
        check(re.fullmatch(pattern, good) is not None, f"ClusterName accepts tenant id {good[:20]!r}")
    for bad in ["Alpine", "-shop", "shop-", "../shop", "x" * 64, "shop_1", ""]:
        check(re.fullmatch(pattern, bad) is None, f"ClusterName refuses {bad[:20]!r}")
    heaps = cluster_t["Mappings"]["HeapOfMemory"]
    check(all(int(v["Heap"]) * 2 == int(k) for k, v in heaps.items())
          and set(heaps) == set(cluster_t["Parameters"]["Memory"]["AllowedValues"]),
          "the JVM heap is half of every allowed task memory")
    check(env["ES_JAVA_OPTS"] == "-Xms1024m -Xmx1024m", "the default task (2 GiB) gets a 1 GiB heap")
    fixture = load("tests/fixtures/search-cluster-outputs.yaml")
    check(set(fixture["Parameters"]) == set(cluster_t["Parameters"])
          and set(fixture["Outputs"]) == set(cluster_t["Outputs"]),
          "the moto stand-in of the cluster stack has its parameters and outputs")
    main_fixture = load("tests/fixtures/main-stack-exports.yaml")
    check({o["Export"]["Name"]["Fn::Sub"] for o in main_fixture["Outputs"].values()}
          <= {o["Export"]["Name"]["Fn::Sub"] for o in main_t["Outputs"].values() if "Export" in o},
          "the moto stand-in of the main stack exports only what the real one exports")
    imported = set()

    def walk(node):
        if isinstance(node, dict):
            if "Fn::ImportValue" in node:
                imported.add(Stack.sub(cl, node["Fn::ImportValue"]["Fn::Sub"], {}))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cluster_t)
    check(imported <= set(es.exports), "every import of the cluster stack is exported by the main stack")

    if failures:
        print(f"\n{len(failures)} check(s) failed")
        sys.exit(1)
    print("\nall infra checks passed")


if __name__ == "__main__":
    main()
