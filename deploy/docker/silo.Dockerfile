# LoyaltyGrains silo (Orleans host; serves gRPC co-hosted unless gateways front it).
# Build from the repository root:  docker build -f deploy/docker/silo.Dockerfile -t loyaltygrains/silo:1.0.0 .
# Exact versions (the SDK and runtime this repository is built and tested with). In the bank's registry pin by digest
# as well: FROM registry.bank.example/dotnet/aspnet:10.0.12-noble-chiseled@sha256:<digest> (docs/OPERATIONS.md).
FROM mcr.microsoft.com/dotnet/sdk:10.0.401-noble AS build
WORKDIR /src
# Restore first, from the project files only, so the layer is reused until a dependency changes.
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY grains/LoyaltyGrains.Domain/LoyaltyGrains.Domain.csproj grains/LoyaltyGrains.Domain/
COPY grains/LoyaltyGrains.Contracts/LoyaltyGrains.Contracts.csproj grains/LoyaltyGrains.Contracts/
COPY grains/LoyaltyGrains.Grains/LoyaltyGrains.Grains.csproj grains/LoyaltyGrains.Grains/
COPY grains/LoyaltyGrains.Persistence/LoyaltyGrains.Persistence.csproj grains/LoyaltyGrains.Persistence/
COPY gateway/LoyaltyGrains.Gateway/LoyaltyGrains.Gateway.csproj gateway/LoyaltyGrains.Gateway/
COPY grains/LoyaltyGrains.Analytics/LoyaltyGrains.Analytics.csproj grains/LoyaltyGrains.Analytics/
COPY cli/LoyaltyGrains.Cli/LoyaltyGrains.Cli.csproj cli/LoyaltyGrains.Cli/
COPY silo/LoyaltyGrains.Silo.csproj silo/
RUN dotnet restore silo/LoyaltyGrains.Silo.csproj
COPY grains/ grains/
COPY gateway/ gateway/
COPY cli/ cli/
COPY silo/ silo/
RUN dotnet publish silo/LoyaltyGrains.Silo.csproj -c Release --no-restore -o /app

# Chiseled: no shell, no package manager, runs as the non-root "app" user (uid 1654).
FROM mcr.microsoft.com/dotnet/aspnet:10.0.12-noble-chiseled AS runtime
WORKDIR /app
COPY --from=build /app .
# Numeric, so Kubernetes can verify runAsNonRoot ("app", uid 1654, in the chiseled image).
USER 1654
# gRPC, metrics and health (/metrics, /healthz, /readyz), silo-to-silo, client gateway.
EXPOSE 5000 9464 11111 30000
ENV LOYALTY_LISTEN_ADDRESS=0.0.0.0
ENTRYPOINT ["dotnet", "LoyaltyGrains.Silo.dll"]
