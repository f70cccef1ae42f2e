# LoyaltyGrains gateway (stateless gRPC edge; an Orleans client of the silos, found through PostgreSQL membership).
# Build from the repository root:  docker build -f deploy/docker/gateway.Dockerfile -t loyaltygrains/gateway:1.0.0 .
# Exact versions (the SDK and runtime this repository is built and tested with). In the bank's registry pin by digest
# as well: FROM registry.bank.example/dotnet/aspnet:10.0.12-noble-chiseled@sha256:<digest> (docs/OPERATIONS.md).
FROM mcr.microsoft.com/dotnet/sdk:10.0.401-noble AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY grains/LoyaltyGrains.Domain/LoyaltyGrains.Domain.csproj grains/LoyaltyGrains.Domain/
COPY grains/LoyaltyGrains.Contracts/LoyaltyGrains.Contracts.csproj grains/LoyaltyGrains.Contracts/
COPY grains/LoyaltyGrains.Grains/LoyaltyGrains.Grains.csproj grains/LoyaltyGrains.Grains/
COPY grains/LoyaltyGrains.Persistence/LoyaltyGrains.Persistence.csproj grains/LoyaltyGrains.Persistence/
COPY grains/LoyaltyGrains.Analytics/LoyaltyGrains.Analytics.csproj grains/LoyaltyGrains.Analytics/
COPY gateway/LoyaltyGrains.Gateway/LoyaltyGrains.Gateway.csproj gateway/LoyaltyGrains.Gateway/
COPY gateway/LoyaltyGrains.GatewayHost/LoyaltyGrains.GatewayHost.csproj gateway/LoyaltyGrains.GatewayHost/
RUN dotnet restore gateway/LoyaltyGrains.GatewayHost/LoyaltyGrains.GatewayHost.csproj
COPY grains/ grains/
COPY gateway/ gateway/
RUN dotnet publish gateway/LoyaltyGrains.GatewayHost/LoyaltyGrains.GatewayHost.csproj -c Release --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0.12-noble-chiseled AS runtime
WORKDIR /app
COPY --from=build /app .
# Numeric, so Kubernetes can verify runAsNonRoot ("app", uid 1654, in the chiseled image).
USER 1654
# gRPC; metrics and health (/metrics, /healthz, /readyz).
EXPOSE 5000 9464
ENV LOYALTY_LISTEN_ADDRESS=0.0.0.0
ENTRYPOINT ["dotnet", "LoyaltyGrains.GatewayHost.dll"]
