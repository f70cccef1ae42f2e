using Orleans.Hosting.Kubernetes;

namespace LoyaltyGrains.Silo;

/// <summary>
/// Orleans Kubernetes hosting for a durable silo running in a pod: the silo is named after its pod and, through the
/// Kubernetes API, a silo whose pod is deleted is declared dead at once. A recreated pod comes back with a new IP, so
/// without this its predecessor's entry would be evicted only after the other silos' probes time out.
/// </summary>
public static class KubernetesHosting
{
    /// <summary>
    /// On when <c>Loyalty:Kubernetes:Hosting</c> is true, off when it is false; unset, on when the process runs in a pod
    /// that passes its name and namespace (<c>POD_NAME</c>, <c>POD_NAMESPACE</c> from the downward API, as
    /// deploy/kubernetes does) to a cluster that has an API server (<c>KUBERNETES_SERVICE_HOST</c>).
    /// </summary>
    public static ISiloBuilder UseKubernetesHostingWhenInPod(this ISiloBuilder silo, IConfiguration configuration)
    {
        if (!Enabled(configuration, Environment.GetEnvironmentVariable)) return silo;
        // Defunct silos' pods are not deleted (the package's default): the StatefulSet and probes own pod lifetimes,
        // and the silo's Role grants no delete.
        return silo.UseKubernetesHosting();
    }

    public static bool Enabled(IConfiguration configuration, Func<string, string?> environment)
    {
        var setting = configuration["Loyalty:Kubernetes:Hosting"];
        if (!string.IsNullOrWhiteSpace(setting))
        {
            return bool.TryParse(setting, out var on)
                ? on
                : throw new InvalidOperationException($"Loyalty:Kubernetes:Hosting: '{setting}' is not true or false");
        }
        return !string.IsNullOrEmpty(environment("KUBERNETES_SERVICE_HOST"))
            && !string.IsNullOrEmpty(environment(KubernetesHostingOptions.PodNameEnvironmentVariable))
            && !string.IsNullOrEmpty(environment(KubernetesHostingOptions.PodNamespaceEnvironmentVariable));
    }
}
